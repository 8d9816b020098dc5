"""Resizing of NHWC maps with PyTorch `F.interpolate` semantics.

All functions take `x` of shape (B, H, W, C) and return (B, h, w, C) for the requested `(h, w)`.
The source coordinate of each output pixel is computed exactly as PyTorch does when an output
size (not a scale factor) is given, so the results match `F.interpolate` bit for bit up to float
rounding of the interpolation weights.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def _nearest_index(in_size: int, out_size: int) -> np.ndarray:
  # PyTorch 'nearest': src = floor(dst * in / out), clamped to the last pixel.
  scale = np.float32(in_size) / np.float32(out_size)
  idx = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
  return np.minimum(idx, in_size - 1)


def resize_nearest(x: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
  """PyTorch `F.interpolate(mode='nearest', size=size)` on (B, H, W, C) -> (B, h, w, C)."""
  h, w = size
  rows = _nearest_index(x.shape[1], h)
  cols = _nearest_index(x.shape[2], w)
  return x[:, rows][:, :, cols]


def upsample_nearest2x(x: jnp.ndarray) -> jnp.ndarray:
  """Nearest upsampling by 2 (PyTorch `scale_factor=2`): (B, H, W, C) -> (B, 2H, 2W, C)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _linear_weights(in_size: int, out_size: int, align_corners: bool):
  """Indices (i0, i1) and weight of i1 for each output position along one axis."""
  # Float32 arithmetic in PyTorch's order, so that indices and weights are identical.
  dst = np.arange(out_size, dtype=np.float32)
  f32 = np.float32
  if align_corners:
    scale = f32(in_size - 1) / f32(out_size - 1) if out_size > 1 else f32(0)
    src = dst * scale
  else:
    scale = f32(in_size) / f32(out_size)
    src = np.maximum(scale * (dst + f32(0.5)) - f32(0.5), f32(0))  # PyTorch clamps at 0.
  i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  lam = (src - i0.astype(np.float32)).astype(np.float32)
  return i0, i1, lam


def resize_bilinear(x: jnp.ndarray, size: tuple[int, int], align_corners: bool) -> jnp.ndarray:
  """PyTorch `F.interpolate(mode='bilinear', size=size, align_corners=...)` on NHWC maps.

  Args:
    x: (B, H, W, C) float array.
    size: output (h, w).
    align_corners: PyTorch's flag. With False, source coordinates `(dst + 0.5) * in / out - 0.5`
      are clamped at 0 as PyTorch does.

  Returns:
    (B, h, w, C) array of x's dtype.
  """
  h, w = size
  r0, r1, ry = _linear_weights(x.shape[1], h, align_corners)
  c0, c1, cx = _linear_weights(x.shape[2], w, align_corners)
  ry = jnp.asarray(ry, x.dtype)[None, :, None, None]
  cx = jnp.asarray(cx, x.dtype)[None, None, :, None]
  top = x[:, r0]
  bottom = x[:, r1]
  rows = top * (1 - ry) + bottom * ry
  return rows[:, :, c0] * (1 - cx) + rows[:, :, c1] * cx
