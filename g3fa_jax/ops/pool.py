"""2x2, stride-2 pooling (PyTorch's floor mode) from four strided slices instead of a reduce-window.

XLA:CPU differentiates a max-pool written as `lax.reduce_window` (flax's `nn.max_pool`) through a
select-and-gather pass that builds int32 index maps of the input's size and a variadic
reduce-window over them: at VGG19's first pool (2x256x256x64) forward plus gradient take ~110 ms
on two cores, against ~12 ms written as maxima of the window's four corners with the gradient
routed explicitly. The average pool's gradient likewise (11 ms against 2 ms). Both matter in the
training step's perceptual pyramid and in every down block.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _corners(x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """The (B, H//2, W//2, C) top-left, top-right, bottom-left, bottom-right pixels of each
  window, in PyTorch's scan order; a last odd row or column is dropped (floor mode)."""
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
  x = x[:, :h, :w]
  return x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]


def _from_corners(corners: list[jnp.ndarray], shape: tuple[int, ...]) -> jnp.ndarray:
  """Inverse of `_corners`: four (B, h, w, C) maps -> (B, H, W, C), zeros in a dropped row or
  column."""
  top_left, top_right, bottom_left, bottom_right = corners
  b, h, w, c = top_left.shape
  top = jnp.stack([top_left, top_right], axis=3)
  bottom = jnp.stack([bottom_left, bottom_right], axis=3)
  full = jnp.stack([top, bottom], axis=2).reshape(b, 2 * h, 2 * w, c)
  return jnp.pad(full, ((0, 0), (0, shape[1] - 2 * h), (0, shape[2] - 2 * w), (0, 0)))


@jax.custom_vjp
def max_pool2x2(x: jnp.ndarray) -> jnp.ndarray:
  """`nn.MaxPool2d(2)`: (B, H, W, C) -> (B, H // 2, W // 2, C); the gradient goes to the first
  maximum of each window in scan order, as in PyTorch and `nn.max_pool`."""
  top_left, top_right, bottom_left, bottom_right = _corners(x)
  return jnp.maximum(jnp.maximum(top_left, top_right), jnp.maximum(bottom_left, bottom_right))


def _max_pool_forward(x):
  y = max_pool2x2(x)
  return y, (x, y)


def _max_pool_backward(residuals, g):
  x, y = residuals
  taken = jnp.zeros(y.shape, bool)
  routed = []
  for corner in _corners(x):
    hit = (corner == y) & ~taken
    routed.append(jnp.where(hit, g, jnp.zeros_like(g)))
    taken = taken | hit
  return (_from_corners(routed, x.shape),)


max_pool2x2.defvjp(_max_pool_forward, _max_pool_backward)


def avg_pool2x2(x: jnp.ndarray) -> jnp.ndarray:
  """`nn.AvgPool2d(2)`: (B, H, W, C) -> (B, H // 2, W // 2, C), the mean of each 2x2 window."""
  top_left, top_right, bottom_left, bottom_right = _corners(x)
  return ((top_left + top_right) + (bottom_left + bottom_right)) * jnp.asarray(0.25, x.dtype)
