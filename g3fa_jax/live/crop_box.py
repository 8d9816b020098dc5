"""A stable face crop for a live stream: the detector's box, smoothed over time.

The face is detected every `detect_every` frames (MTCNN, on a copy downscaled to `max_side`);
each detection is made a square crop (the animation CLI's margin and geometry) and blended into
the current box by exponential smoothing, so the crop follows the head without jitter (the
official live demo smooths its box the same way). A frame where the face is missed keeps the box.
"""

from __future__ import annotations

import numpy as np

from g3fa_jax.animate import crop as crop_lib
from g3fa_jax.media import crop as media_crop


class SmoothedBox:
  """The crop box [x0, y0, x1, y1] (frame pixels) of the face in a stream.

  Args:
    detector: an MTCNN (`detect_batch`), e.g. `g3fa_jax.animate.crop.default_detector()`.
    detect_every: run the detector on every n-th frame `update` sees (1: every frame), and on
      every frame while no face has been found.
    smoothing: weight of the current box when a new detection is blended in, in [0, 1)
      (0: jump to each detection).
    increase: margin around the face, a fraction of its size on every side.
    max_side: frames are searched downscaled to this longest side.
  """

  def __init__(self, detector, detect_every: int = 5, smoothing: float = 0.8,
               increase: float = crop_lib.DEFAULT_INCREASE, max_side: int = 320):
    if detect_every < 1:
      raise ValueError(f'detect_every must be >= 1, got {detect_every}')
    if not 0.0 <= smoothing < 1.0:
      raise ValueError(f'smoothing must lie in [0, 1), got {smoothing}')
    self.detector = detector
    self.detect_every = detect_every
    self.smoothing = smoothing
    self.increase = increase
    self.max_side = max_side
    self.box: np.ndarray | None = None
    self.detections = 0  # Frames the detector ran on.
    self.misses = 0  # Of those, frames without a face.
    self._since_detection = 0  # Frames since the detector last ran.

  def update(self, frame: np.ndarray) -> np.ndarray | None:
    """The box for this (H, W, 3) uint8 frame, or None while no face has been found yet."""
    if self.box is None or self._since_detection >= self.detect_every:
      self._detect(frame)
      self._since_detection = 0
    self._since_detection += 1
    return self.box

  def _detect(self, frame: np.ndarray) -> None:
    self.detections += 1
    (face,) = media_crop.detect_main_faces([frame], self.detector, max_side=self.max_side,
                                           min_prob=crop_lib.MIN_FACE_PROB)
    if face is None:
      self.misses += 1
      return
    square = media_crop.square_crop(face, frame.shape[:2], self.increase)
    if self.box is None or self.box_outside(frame):
      self.box = square
    else:
      self.box = self.smoothing * self.box + (1.0 - self.smoothing) * square

  def box_outside(self, frame: np.ndarray) -> bool:
    """Whether the current box no longer fits the frame (the stream changed size)."""
    height, width = frame.shape[:2]
    return bool(self.box[2] > width + 0.5 or self.box[3] > height + 0.5)

  def reset(self) -> None:
    """Forget the box: the next frame is searched and its face taken as it is."""
    self.box = None
