"""Band-limited (Gaussian) downsampling, as First Order Motion Model's AntiAliasInterpolation2d.

The official module is a depthwise convolution with a (k, k) Gaussian, then every 1/scale-th
pixel. A Gaussian is separable, so here it runs as two small matrix products, one per axis,
(H/s, H) and (W/s, W) banded matrices holding the kernel's 1D factor, which compute only the
kept pixels: the same function up to float rounding. On CPUs this matters in the backward pass
of the perceptual loss's image pyramid, where XLA computes the strided depthwise convolution's
input gradient as a convolution of an 8x-dilated input (29x29 taps per pixel at scale 1/8):
about 2 s of the 17 s training step at 256x256 on two cores, against milliseconds for the matrix
products. A kernel that is not separable (`kernel=` from a checkpoint buffer) runs as the
convolution.
"""

from __future__ import annotations

from typing import Optional, Sequence

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


def separable_factors(kernel: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray]]:
  """(column, row) 1D float64 factors with outer(column, row) == kernel up to float32 rounding,
  or None if the (k, k) kernel is not separable (rank 1)."""
  kernel = np.asarray(kernel, np.float64)
  total = kernel.sum()
  if total == 0:
    return None
  column, row = kernel.sum(axis=1) / total, kernel.sum(axis=0)
  if not np.allclose(np.outer(column, row), kernel, rtol=1e-5, atol=1e-7 * np.abs(kernel).max()):
    return None
  return column, row


def downsample_matrix(length: int, taps: np.ndarray, stride: int, before: int) -> np.ndarray:
  """(ceil(length / stride), length) float32 matrix of a 1D convolution with `taps`, zero
  padding `before` on the left, keeping every `stride`-th output: out[o] = sum_t taps[t] *
  x[o * stride - before + t]."""
  out = (length - 1) // stride + 1
  matrix = np.zeros((out, length), np.float64)
  for o in range(out):
    for t, weight in enumerate(taps):
      i = o * stride - before + t
      if 0 <= i < length:
        matrix[o, i] = weight
  return matrix.astype(np.float32)


def antialias_downsample(x: jnp.ndarray, scale: float,
                         kernel: Sequence[Sequence[float]] | np.ndarray | None = None
                         ) -> jnp.ndarray:
  """Gaussian blur then keep every int(1/scale)-th pixel; scale 1 returns `x` unchanged.

  Args:
    x: (B, H, W, C) map.
    scale: downsampling factor in (0, 1].
    kernel: optional (k, k) kernel replacing `gaussian_kernel(scale)`.

  Returns:
    (B, ceil(H * scale), ceil(W * scale), C) for integer 1/scale, in x's dtype.
  """
  if scale == 1:
    return x
  kernel = gaussian_kernel(scale) if kernel is None else np.asarray(kernel, np.float32)
  size = kernel.shape[0]
  ka = size // 2
  kb = ka - 1 if size % 2 == 0 else ka
  stride = int(1 / scale)
  factors = separable_factors(kernel)
  if factors is not None:
    column, row = factors
    rows = jnp.asarray(downsample_matrix(x.shape[1], column, stride, ka), x.dtype)
    cols = jnp.asarray(downsample_matrix(x.shape[2], row, stride, ka), x.dtype)
    x = jnp.einsum('oh,bhwc->bowc', rows, x, precision=lax.Precision.HIGHEST)
    return jnp.einsum('pw,bowc->bopc', cols, x, precision=lax.Precision.HIGHEST)
  channels = x.shape[-1]
  weight = jnp.asarray(np.tile(kernel[:, :, None, None], (1, 1, 1, channels)), x.dtype)
  # A strided convolution equals the full convolution sliced with [::stride].
  return lax.conv_general_dilated(
      x, weight, window_strides=(stride, stride), padding=((ka, kb), (ka, kb)),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=channels,
      precision=lax.Precision.HIGHEST)


def detector_view(x: jnp.ndarray, scale: float) -> jnp.ndarray:
  """What a network that downsamples its input by `scale` (the keypoint detector's and dense
  motion's `scale_factor`) sees of x, shown at x's size: `antialias_downsample`, then each kept
  pixel repeated 1/scale times along both axes (nearest upsampling), so that one reader can be
  trained on the views of every scale. x (B, H, W, C) with H and W multiples of 1/scale; returns
  the same shape and dtype (x itself at scale 1)."""
  if scale == 1:
    return x
  stride = int(round(1 / scale))
  if x.shape[1] % stride or x.shape[2] % stride:
    raise ValueError(f'detector_view: frames {x.shape[1]}x{x.shape[2]} are not multiples of '
                     f'1/scale = {stride}')
  small = antialias_downsample(x, scale)
  return jnp.repeat(jnp.repeat(small, stride, axis=1), stride, axis=2)
