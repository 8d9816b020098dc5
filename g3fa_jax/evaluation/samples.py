"""Sample grids: a source frame, driving frames and generated frames side by side."""

from __future__ import annotations

import os
import pathlib
from typing import Sequence

import numpy as np
from PIL import Image


def sample_indices(num_frames: int, count: int) -> list[int]:
  """`count` frame indices spread evenly over a video (all of them for a short one)."""
  if num_frames <= count:
    return list(range(num_frames))
  return sorted(set(np.linspace(0, num_frames - 1, count).round().astype(int).tolist()))


def grid(source: np.ndarray, driving: Sequence[np.ndarray], generated: Sequence[np.ndarray],
         pad: int = 2) -> np.ndarray:
  """Two rows: [source, driving_1..n] over [blank, generated_1..n].

  Args:
    source: (H, W, 3) in [0, 1].
    driving, generated: n frames each, (H, W, 3) in [0, 1].
    pad: white margin between the tiles, in pixels.

  Returns:
    (2H + 3 pad, (n + 1) W + (n + 2) pad, 3) float32 in [0, 1].
  """
  h, w = source.shape[:2]
  n = len(driving)
  out = np.ones((2 * h + 3 * pad, (n + 1) * w + (n + 2) * pad, 3), np.float32)
  def put(row, col, image):
    y, x = pad + row * (h + pad), pad + col * (w + pad)
    out[y:y + h, x:x + w] = np.clip(image, 0, 1)
  put(0, 0, source)
  for i, (d, g) in enumerate(zip(driving, generated), start=1):
    put(0, i, d)
    put(1, i, g)
  return out


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)
