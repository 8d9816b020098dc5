"""A stable square face crop per clip (First Order Motion Model style).

The face is detected on sampled frames (MTCNN, on a copy downscaled to at most `max_side`
pixels); per frame the largest confident face is taken, faces far from the clip's median box
(another person) are dropped, and the crop is the union of the remaining boxes, enlarged by
`increase` of its size on every side, made square and moved inside the frame.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image


def downscale(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
  """(frame resized so that max(H, W) <= max_side, scale factor applied)."""
  height, width = frame.shape[:2]
  scale = min(1.0, max_side / max(height, width))
  if scale == 1.0:
    return frame, 1.0
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR)), scale


def main_face(boxes: np.ndarray, probs: np.ndarray, min_prob: float) -> np.ndarray | None:
  """The largest box with probability >= min_prob, or None."""
  ok = probs >= min_prob
  if not np.any(ok):
    return None
  boxes = boxes[ok]
  area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  return boxes[int(np.argmax(area))]


def detect_main_faces(frames: Sequence[np.ndarray], detector, max_side: int = 320,
                      min_prob: float = 0.9, batch_size: int = 8) -> list[np.ndarray | None]:
  """Per frame the main face box [x0, y0, x1, y1] in frame pixels, or None."""
  out = []
  for start in range(0, len(frames), batch_size):
    small = [downscale(f, max_side) for f in frames[start:start + batch_size]]
    scale = small[0][1]
    results = detector.detect_batch(np.stack([s[0] for s in small]))
    for boxes, probs, _ in results:
      box = main_face(boxes, probs, min_prob)
      out.append(None if box is None else box / scale)
  return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """IoU of boxes a (N, 4) with one box b (4,)."""
  w = np.clip(np.minimum(a[:, 2], b[2]) - np.maximum(a[:, 0], b[0]), 0, None)
  h = np.clip(np.minimum(a[:, 3], b[3]) - np.maximum(a[:, 1], b[1]), 0, None)
  inter = w * h
  area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
  area_b = (b[2] - b[0]) * (b[3] - b[1])
  return inter / np.maximum(area_a + area_b - inter, 1e-9)


def track_union(boxes: np.ndarray, min_iou: float = 0.1) -> np.ndarray:
  """Union of the boxes (N, 4) that overlap the median box (drops other people / misses)."""
  median = np.median(boxes, axis=0)
  kept = boxes[iou(boxes, median) >= min_iou]
  if not len(kept):
    kept = boxes
  return np.array([kept[:, 0].min(), kept[:, 1].min(), kept[:, 2].max(), kept[:, 3].max()],
                  np.float64)


def square_crop(box: Sequence[float], frame_hw: tuple[int, int], increase: float = 0.3
                ) -> np.ndarray:
  """Square crop [x0, y0, x1, y1] around box, side (1 + 2 increase) max(w, h), inside the frame.

  The side is capped at the frame's smaller dimension; the square is shifted (not shrunk) to
  stay inside the frame.
  """
  height, width = frame_hw
  x0, y0, x1, y1 = (float(v) for v in box)
  side = min(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * increase), height, width)
  cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
  left = float(np.clip(cx - side / 2.0, 0.0, width - side))
  top = float(np.clip(cy - side / 2.0, 0.0, height - side))
  return np.array([left, top, left + side, top + side], np.float64)


def crop_resize(frame: np.ndarray, box: Sequence[float], size: int) -> np.ndarray:
  """The box region of frame resized to (size, size, 3) uint8 (bicubic, antialiased)."""
  image = Image.fromarray(frame)
  return np.asarray(image.resize((size, size), Image.BICUBIC, box=tuple(float(v) for v in box)))
