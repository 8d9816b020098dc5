"""Band-limited (Gaussian) downsampling, as First Order Motion Model's AntiAliasInterpolation2d."""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax


def gaussian_kernel(scale: float) -> np.ndarray:
  """Normalised 2D Gaussian (k, k) float32 kernel for downsampling by `scale` (< 1).

  sigma = (1/scale - 1) / 2 and k = 2 * round(4 * sigma) + 1 (13 x 13 at scale 0.25). Computed in
  float32 in the official order so that it equals the official `down.weight` buffer.
  """
  sigma = (1 / scale - 1) / 2
  size = 2 * round(sigma * 4) + 1
  grid = np.arange(size, dtype=np.float32)
  mean = (size - 1) / 2
  g = np.exp(-(grid - np.float32(mean)) ** 2 / np.float32(2 * sigma ** 2)).astype(np.float32)
  kernel = g[:, None] * g[None, :]
  return (kernel / np.sum(kernel, dtype=np.float32)).astype(np.float32)


def kernel_from_buffer(buffer: np.ndarray) -> tuple[tuple[float, ...], ...]:
  """A checkpoint's `down.weight` buffer (C, 1, k, k), identical per channel, as a hashable
  (k, k) tuple for the `antialias_kernel` field of the modules that downsample.

  Only needed to reproduce a checkpoint whose buffer differs from the computed kernel (e.g. one
  stored in reduced precision); an official float32 checkpoint holds the computed kernel.
  """
  buffer = np.asarray(buffer, np.float32)
  if buffer.ndim != 4 or buffer.shape[1] != 1 or buffer.shape[2] != buffer.shape[3]:
    raise ValueError(f'anti-alias buffer must be (C, 1, k, k), got {buffer.shape}')
  if not np.all(buffer == buffer[:1]):
    raise ValueError('anti-alias buffer differs between channels')
  return tuple(tuple(float(v) for v in row) for row in buffer[0, 0])


def antialias_downsample(x: jnp.ndarray, scale: float,
                         kernel: Sequence[Sequence[float]] | np.ndarray | None = None
                         ) -> jnp.ndarray:
  """Gaussian blur then keep every int(1/scale)-th pixel; scale 1 returns `x` unchanged.

  Args:
    x: (B, H, W, C) map.
    scale: downsampling factor in (0, 1].
    kernel: optional (k, k) kernel replacing `gaussian_kernel(scale)`.

  Returns:
    (B, ceil(H * scale), ceil(W * scale), C) for integer 1/scale.
  """
  if scale == 1:
    return x
  kernel = gaussian_kernel(scale) if kernel is None else np.asarray(kernel, np.float32)
  size = kernel.shape[0]
  ka = size // 2
  kb = ka - 1 if size % 2 == 0 else ka
  stride = int(1 / scale)
  channels = x.shape[-1]
  weight = jnp.asarray(np.tile(kernel[:, :, None, None], (1, 1, 1, channels)), x.dtype)
  # A strided convolution equals the full convolution sliced with [::stride].
  return lax.conv_general_dilated(
      x, weight, window_strides=(stride, stride), padding=((ka, kb), (ka, kb)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=channels,
      precision=lax.Precision.HIGHEST)
