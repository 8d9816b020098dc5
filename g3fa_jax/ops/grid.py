"""Normalised coordinate grids and Gaussian keypoint heatmaps."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def make_coordinate_grid(spatial_size: tuple[int, int]) -> jnp.ndarray:
  """Meshgrid of an h x w map in [-1, 1]: (h, w, 2) with [..., 0] = x = 2i/(w-1) - 1 and
  [..., 1] = y = 2j/(h-1) - 1 for column i and row j.

  Computed in float32 in the same order as the official code, so values are bit-identical.
  """
  h, w = spatial_size
  x = 2 * (np.arange(w, dtype=np.float32) / np.float32(w - 1)) - 1
  y = 2 * (np.arange(h, dtype=np.float32) / np.float32(h - 1)) - 1
  xx = np.broadcast_to(x[None, :], (h, w))
  yy = np.broadcast_to(y[:, None], (h, w))
  return jnp.asarray(np.stack([xx, yy], axis=-1).astype(np.float32))


def kp2gaussian(kp_value: jnp.ndarray, spatial_size: tuple[int, int],
                kp_variance: float) -> jnp.ndarray:
  """Gaussian heatmaps around keypoints.

  Args:
    kp_value: (..., 2) keypoints (x, y) in [-1, 1].
    spatial_size: (h, w) of the heatmap.
    kp_variance: variance of the isotropic Gaussian in normalised coordinates.

  Returns:
    (..., h, w) array `exp(-0.5 * |grid - kp|^2 / kp_variance)`, peak value 1.
  """
  grid = make_coordinate_grid(spatial_size).astype(kp_value.dtype)
  diff = grid - kp_value[..., None, None, :]
  return jnp.exp(-0.5 * jnp.sum(diff ** 2, axis=-1) / kp_variance)
