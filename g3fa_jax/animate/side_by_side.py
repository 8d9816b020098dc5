"""`--side-by-side`: source | driving | result (| depth | normal) panels in one frame."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
  """Float images in [0, 1] -> uint8 in [0, 255] (rounded, clipped)."""
  return np.round(np.clip(np.asarray(images, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def depth_to_rgb(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
  """Depth (..., H, W, 1) in [min_depth, max_depth] -> grey uint8 (..., H, W, 3), near = bright."""
  depth = np.asarray(depth, np.float32)[..., 0]
  grey = (max_depth - depth) / (max_depth - min_depth)
  return to_uint8(np.repeat(grey[..., None], 3, axis=-1))


def normal_to_rgb(normal: np.ndarray) -> np.ndarray:
  """Unit normals (..., H, W, 3) -> uint8 (..., H, W, 3), the usual (n + 1) / 2 colouring."""
  return to_uint8((np.asarray(normal, np.float32) + 1.0) / 2.0)


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
  if image.shape[0] == height:
    return image
  width = max(1, int(round(image.shape[1] * height / image.shape[0])))
  return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))


def compose(panels: Sequence[np.ndarray]) -> np.ndarray:
  """(H_i, W_i, 3) uint8 panels side by side, each resized (keeping its aspect ratio) to the
  largest height; returns (H, sum W, 3) uint8."""
  height = max(p.shape[0] for p in panels)
  return np.concatenate([_fit_height(p, height) for p in panels], axis=1)
