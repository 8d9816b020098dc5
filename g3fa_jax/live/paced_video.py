"""A video file played as if it were a camera: frame i arrives at i / fps seconds after `start`.

`next()` returns the newest frame that has arrived by now; the frames that arrived while the
caller was busy are skipped and counted as dropped, as a live camera behind a latest-frame-only
mailbox would drop them. With an injected clock the drops are exactly reproducible.
"""

from __future__ import annotations

import math
import os

from g3fa_jax.animate import video
from g3fa_jax.live.clock import Clock
from g3fa_jax.live.frames import Frame

# Tolerance of "has frame i arrived" against float rounding of i / fps.
_EPS = 1e-9


class PacedVideo:
  """Frames of a video (or frame folder, or image) paced at the file's own frame rate.

  Args:
    path: anything `g3fa_jax.animate.video` reads.
    clock: the clock frames arrive on.
    max_frames: play at most this many frames (0: all).
  Raises MediaError (one line naming the file) if it cannot be read.
  """

  def __init__(self, path: str | os.PathLike, clock: Clock, max_frames: int = 0):
    self.path = str(path)
    self.fps = float(video.probe(path).fps)
    self.dropped = 0
    self.arrived = 0
    self._clock = clock
    self._frames = video.iter_frames(path, max_frames)
    self._start: float | None = None
    self._next_index = 0  # The next frame of the file to decode.
    self._ended = False

  def start(self) -> None:
    self._start = self._clock.now()

  def _due(self) -> int:
    """How many frames have arrived by now."""
    elapsed = self._clock.now() - self._start
    return int(math.floor(elapsed * self.fps + _EPS)) + 1

  def _decode(self):
    try:
      image = next(self._frames)
    except StopIteration:
      self._ended = True
      return None
    self._next_index += 1
    return image

  def next(self) -> Frame | None:
    if self._start is None:
      self.start()
    if self._ended:
      return None
    due = self._due()
    if due <= self._next_index:  # Nothing new yet: wait for the next frame to arrive.
      self._clock.sleep((self._next_index / self.fps) - (self._clock.now() - self._start))
      due = max(self._due(), self._next_index + 1)
    newest = None
    while self._next_index < due:
      image = self._decode()
      if image is None:
        break
      if newest is not None:
        self.dropped += 1
      newest = Frame(image, self._next_index - 1, (self._next_index - 1) / self.fps)
      self.arrived += 1
    return newest

  def close(self) -> None:
    self._frames.close()
    self._ended = True
