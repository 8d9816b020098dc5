"""Face crops of the source and the driving video, and pasting the result back.

The model sees square face crops, made with the geometry of the training data's
(`g3fa_jax.media.crop`): the source crop is a square around its largest face; the driving crop is
one stable square for the whole clip (the union of the main face boxes of frames sampled over it,
FOMM's crop-video recipe), so the camera does not jump.
Boxes are [x0, y0, x1, y1] in frame pixels. The detector is MTCNN (`g3fa_jax.face`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from g3fa_jax.animate.errors import NoFaceError
from g3fa_jax.media import crop as crop_lib

# The margin around the face box, a fraction of its size on every side (data_prep's default, so
# crops frame the face as the training data does).
DEFAULT_INCREASE = 0.3
# Frames are searched for faces downscaled to this longest side.
DETECT_MAX_SIDE = 640
MIN_FACE_PROB = 0.9


def default_detector():
  """The shipped MTCNN (loaded on first use)."""
  from g3fa_jax.face import mtcnn  # pylint: disable=g-import-not-at-top
  return mtcnn.default_detector()


def source_box(image: np.ndarray, detector, increase: float = DEFAULT_INCREASE,
               name: str = 'source') -> np.ndarray:
  """Square crop box around the largest face of one (H, W, 3) uint8 image; NoFaceError if none."""
  (box,) = crop_lib.detect_main_faces([image], detector, max_side=DETECT_MAX_SIDE,
                                      min_prob=MIN_FACE_PROB)
  if box is None:
    raise NoFaceError(f'{name}: no face found (use --no-crop if the image is already a face crop)')
  return crop_lib.square_crop(box, image.shape[:2], increase)


def clip_box(frames: Sequence[np.ndarray], detector, frame_hw: tuple[int, int],
             scale: float = 1.0, increase: float = DEFAULT_INCREASE,
             name: str = 'driving') -> np.ndarray:
  """One stable square crop box for a clip, from a sample of its frames.

  Args:
    frames: sampled (h, w, 3) uint8 frames of the clip, possibly downscaled by `scale`.
    detector: an MTCNN (`detect_batch`).
    frame_hw: the clip's full frame size (H, W); the box is in its pixels.
    scale: the factor the sampled frames were downscaled by (h = H * scale).
    increase: margin around the face, a fraction of its size on every side.
    name: how errors name the clip.

  The main face of each frame, boxes far from the clip's median face dropped (someone else), their
  union enlarged by `increase` and made square inside the frame. NoFaceError if no frame has one.
  """
  boxes = crop_lib.detect_main_faces(list(frames), detector, max_side=DETECT_MAX_SIDE,
                                     min_prob=MIN_FACE_PROB)
  found = [b / scale for b in boxes if b is not None]
  if not found:
    raise NoFaceError(f'{name}: no face found in {len(boxes)} sampled frames '
                      '(use --no-crop if the video is already a face crop)')
  return crop_lib.square_crop(crop_lib.track_union(np.stack(found)), frame_hw, increase)


class FrameSampler:
  """Keeps an evenly spaced sample of at most 2 * max_samples frames of a stream of unknown
  length, downscaled for detection (the stride doubles whenever the sample fills up)."""

  def __init__(self, max_samples: int = 32, max_side: int = DETECT_MAX_SIDE):
    self.max_samples = max(1, max_samples)
    self.max_side = max_side
    self.stride = 1
    self.frames: list[np.ndarray] = []
    self.scale = 1.0
    self.frame_hw: tuple[int, int] | None = None
    self._count = 0

  def add(self, frame: np.ndarray) -> None:
    if self.frame_hw is None:
      self.frame_hw = frame.shape[:2]
    if self._count % self.stride == 0:
      small, self.scale = crop_lib.downscale(frame, self.max_side)
      self.frames.append(small)
      if len(self.frames) > 2 * self.max_samples:
        self.frames = self.frames[::2]
        self.stride *= 2
    self._count += 1


def crop(frame: np.ndarray, box: Sequence[float] | None, size: int) -> np.ndarray:
  """The box of an (H, W, 3) uint8 frame resized to (size, size, 3) uint8; box None: the whole
  frame resized (not kept in proportion, as FOMM's demo does)."""
  if box is None:
    box = (0.0, 0.0, float(frame.shape[1]), float(frame.shape[0]))
  return crop_lib.crop_resize(frame, box, size)


def _feather(side: int, width: int) -> np.ndarray:
  """(side, side, 1) blending weights: 1 inside, ramping to 0 over `width` pixels at the border."""
  ramp = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5) / max(width, 1)
  ramp = np.clip(ramp, 0.0, 1.0)
  return np.minimum(ramp[:, None], ramp[None, :])[..., None].astype(np.float32)


def paste_back(frame: np.ndarray, face: np.ndarray, box: Sequence[float],
               feather: float = 0.05) -> np.ndarray:
  """`face` (s, s, 3) uint8 resized into the square `box` of `frame` (H, W, 3) uint8.

  The border of the pasted square is blended over `feather` of its side so no seam shows.
  Returns a new (H, W, 3) uint8 frame.
  """
  x0, y0, x1, y1 = (int(round(v)) for v in box)
  x0, y0 = max(x0, 0), max(y0, 0)
  x1, y1 = min(x1, frame.shape[1]), min(y1, frame.shape[0])
  if x1 <= x0 or y1 <= y0:
    raise ValueError(f'box {list(box)} lies outside the frame {frame.shape[:2]}')
  resized = np.asarray(Image.fromarray(face).resize((x1 - x0, y1 - y0), Image.BICUBIC),
                       np.float32)
  weight = _feather(max(x1 - x0, y1 - y0), int(feather * max(x1 - x0, y1 - y0)))
  weight = weight[:y1 - y0, :x1 - x0]
  out = frame.copy()
  region = out[y0:y1, x0:x1].astype(np.float32)
  out[y0:y1, x0:x1] = np.round(weight * resized + (1.0 - weight) * region).astype(np.uint8)
  return out
