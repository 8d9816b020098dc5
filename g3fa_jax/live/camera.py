"""A camera through OpenCV (`cv2.VideoCapture`), read on its own thread into a mailbox."""

from __future__ import annotations

import threading

from g3fa_jax.animate.errors import AnimateError
from g3fa_jax.live.clock import Clock
from g3fa_jax.live.frames import Frame
from g3fa_jax.live.mailbox import Mailbox

# Used when the camera does not report its frame rate.
DEFAULT_FPS = 30.0


def import_cv2():
  """OpenCV, or one line saying how to install it."""
  try:
    import cv2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise AnimateError(f"OpenCV cannot be imported ({e}): pip install 'g3fa-jax[live]' (or use "
                       '--driving video.mp4 --no-window, which does not need it)') from e
  return cv2


class Camera:
  """Frames of a camera (or anything `cv2.VideoCapture` opens), as they come.

  A capture thread reads frames as fast as the camera gives them and leaves each in a
  latest-frame-only `Mailbox`: `next()` returns the newest, the ones the model had no time for
  are dropped and counted.

  Args:
    device: camera index (0 is the first camera) or a stream URL / file name.
    clock: the clock arrival times are read on.
    max_frames: stop after this many frames (0: run until closed).
  """

  def __init__(self, device: int | str, clock: Clock, max_frames: int = 0):
    cv2 = import_cv2()
    self._cv2 = cv2
    self._capture = cv2.VideoCapture(device)
    if not self._capture.isOpened():
      raise AnimateError(f'--camera {device}: cannot open it (is it connected and not used by '
                         'another program? try another index)')
    fps = self._capture.get(cv2.CAP_PROP_FPS)
    self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
    self._clock = clock
    self._max_frames = max_frames
    self._mailbox: Mailbox[Frame] = Mailbox()
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None
    self._start = 0.0

  @property
  def dropped(self) -> int:
    return self._mailbox.dropped

  @property
  def arrived(self) -> int:
    return self._mailbox.arrived

  def start(self) -> None:
    self._start = self._clock.now()
    self._thread = threading.Thread(target=self._capture_loop, name='camera', daemon=True)
    self._thread.start()

  def _capture_loop(self) -> None:
    index = 0
    try:
      while not self._stop.is_set() and (not self._max_frames or index < self._max_frames):
        ok, bgr = self._capture.read()
        if not ok:
          break
        rgb = self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)
        self._mailbox.put(Frame(rgb, index, self._clock.now() - self._start))
        index += 1
    finally:
      self._mailbox.close()

  def next(self) -> Frame | None:
    if self._thread is None:
      self.start()
    return self._mailbox.take()

  def close(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=2.0)
    self._capture.release()
