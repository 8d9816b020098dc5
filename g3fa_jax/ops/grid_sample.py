"""PyTorch-exact `F.grid_sample` (bilinear, `align_corners=False` or `True`) for NHWC maps.

Implemented with gathers of the four neighbouring pixels, so it is differentiable with respect to
both the sampled map and the sampling grid (the gradient through the integer corner indices is
zero, as in PyTorch's analytic backward pass).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _unnormalize(coord: jnp.ndarray, size: int, align_corners: bool) -> jnp.ndarray:
  if align_corners:  # -1 and 1 are the centres of the border pixels.
    return (coord + 1) * ((size - 1) / 2)
  # align_corners=False: -1 and 1 are the outer edges of the border pixels.
  return (coord + 1) * (size / 2) - 0.5


def _reflect(coord: jnp.ndarray, size: int) -> jnp.ndarray:
  # Reflect about the pixel edges -0.5 and size - 0.5, then clamp into [0, size - 1].
  twice_span = 2.0 * size
  shifted = jnp.abs(coord + 0.5)
  extra = jnp.fmod(shifted, twice_span)
  reflected = jnp.minimum(extra, twice_span - extra) - 0.5
  return jnp.clip(reflected, 0.0, size - 1.0)


def _gather(flat: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
  """flat (B, N, C), index (B, M) int -> (B, M, C)."""
  return jax.vmap(lambda f, i: jnp.take(f, i, axis=0))(flat, index)


def grid_sample(x: jnp.ndarray, grid: jnp.ndarray, padding_mode: str = 'zeros',
                align_corners: bool = False) -> jnp.ndarray:
  """Samples `x` at `grid` like `F.grid_sample(..., mode='bilinear', align_corners=...)`.

  The official G3FA runs with PyTorch's default `align_corners=False`, where the grid of
  `make_coordinate_grid` (pixel centres at -1 ... 1) is not an identity: it shrinks the map by
  half a pixel at each side and half-fades the border pixels into the zero padding.
  `align_corners=True` (what `grid_sample` did before PyTorch 1.3, when FOMM was written) makes
  that grid an exact identity.

  Args:
    x: (B, H, W, C) map.
    grid: (B, Ho, Wo, 2) sampling positions (x, y) in [-1, 1]; values outside are allowed.
    padding_mode: 'zeros' (outside pixels read as 0) or 'reflection' (coordinates reflected at
      the image border, then clamped).

  Returns:
    (B, Ho, Wo, C) samples, dtype of `x`.
  """
  if padding_mode not in ('zeros', 'reflection'):
    raise ValueError(f'grid_sample: padding_mode must be zeros or reflection, got {padding_mode!r}')
  b, h, w, c = x.shape
  if grid.shape[0] != b or grid.shape[-1] != 2:
    raise ValueError(f'grid_sample: grid shape {grid.shape} does not match input {x.shape}')
  ho, wo = grid.shape[1], grid.shape[2]
  # Coordinates and weights in at least float32, even for a low-precision x.
  grid = grid.astype(jnp.promote_types(grid.dtype, jnp.float32))
  ix = _unnormalize(grid[..., 0], w, align_corners)
  iy = _unnormalize(grid[..., 1], h, align_corners)
  if padding_mode == 'reflection':
    if align_corners:
      raise NotImplementedError('grid_sample: reflection padding with align_corners=True')
    ix = _reflect(ix, w)
    iy = _reflect(iy, h)

  x0 = jnp.floor(ix)
  y0 = jnp.floor(iy)
  x1 = x0 + 1
  y1 = y0 + 1
  flat = x.reshape(b, h * w, c)

  def corner(xc, yc, weight):
    valid = (xc >= 0) & (xc <= w - 1) & (yc >= 0) & (yc <= h - 1)
    xi = jnp.clip(xc, 0, w - 1).astype(jnp.int32)
    yi = jnp.clip(yc, 0, h - 1).astype(jnp.int32)
    values = _gather(flat, (yi * w + xi).reshape(b, ho * wo)).reshape(b, ho, wo, c)
    return values * jnp.where(valid, weight, 0).astype(x.dtype)[..., None]

  out = corner(x0, y0, (x1 - ix) * (y1 - iy))
  out = out + corner(x1, y0, (ix - x0) * (y1 - iy))
  out = out + corner(x0, y1, (x1 - ix) * (iy - y0))
  out = out + corner(x1, y1, (ix - x0) * (iy - y0))
  return out
