"""High-pass frames: each frame minus its Gaussian blur (a structure-texture split, as optical flow
methods use to be robust to shading that does not move with the surface)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax


def _gaussian_1d(sigma: float) -> np.ndarray:
  radius = max(1, int(np.ceil(3 * sigma)))
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  g = np.exp(-t ** 2 / (2 * sigma ** 2))
  return (g / g.sum()).astype(np.float32)


def gaussian_blur(frames: jnp.ndarray, sigma: float) -> jnp.ndarray:
  """(B, H, W, C) -> the same, blurred by a separable Gaussian of standard deviation `sigma`
  pixels; near the border the kernel is renormalised over the pixels inside the frame (no dark
  rim from zero padding)."""
  kernel = jnp.asarray(_gaussian_1d(sigma))
  radius = (kernel.shape[0] - 1) // 2

  def blur(x):  # (N, H, W, 1), both axes
    for shape in ((kernel.shape[0], 1, 1, 1), (1, kernel.shape[0], 1, 1)):
      x = lax.conv_general_dilated(x, kernel.reshape(shape).astype(x.dtype), (1, 1),
                                   [(shape[0] // 2, shape[0] // 2), (shape[1] // 2, shape[1] // 2)],
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return x

  if radius == 0:
    return frames
  b, h, w, c = frames.shape
  channels = jnp.moveaxis(frames, -1, 1).reshape(b * c, h, w, 1)
  weight = blur(jnp.ones((1, h, w, 1), frames.dtype))
  blurred = (blur(channels) / weight).reshape(b, c, h, w)
  return jnp.moveaxis(blurred, 1, -1)


def highpass(frames: jnp.ndarray, sigma: float) -> jnp.ndarray:
  """(B, H, W, C) frames minus their `gaussian_blur` (same shape, values in about [-1, 1]):
  what is left are edges and texture, without the smooth shading. sigma <= 0: the frames."""
  if sigma <= 0:
    return frames
  return frames - gaussian_blur(frames, sigma)
