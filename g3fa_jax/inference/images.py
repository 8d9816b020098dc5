"""Validation of image batches handed to the public API."""

from __future__ import annotations

import numpy as np


def as_image_batch(images, name: str) -> np.ndarray:
  """(B, H, W, 3) or (H, W, 3) float in [0, 1] -> (B, H, W, 3) float32, else a clear ValueError."""
  array = np.asarray(images)
  if array.ndim == 3:
    array = array[None]
  if array.ndim != 4 or array.shape[-1] != 3:
    raise ValueError(f'{name}: expected images of shape (B, H, W, 3) or (H, W, 3), got '
                     f'{array.shape}')
  if not np.issubdtype(array.dtype, np.floating):
    raise ValueError(f'{name}: expected float images in [0, 1], got dtype {array.dtype} '
                     '(divide uint8 images by 255)')
  array = array.astype(np.float32)
  if array.size and (array.min() < -1e-3 or array.max() > 1 + 1e-3):
    raise ValueError(f'{name}: values must lie in [0, 1], got [{array.min():.3g}, '
                     f'{array.max():.3g}]')
  return array
