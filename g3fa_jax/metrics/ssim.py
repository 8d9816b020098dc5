"""SSIM with an 11x11 Gaussian window (sigma 1.5), as defined by Wang et al. (2004).

This is the SSIM of `skimage.metrics.structural_similarity(a, b, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)` and of
`pytorch_msssim.ssim(a, b, data_range=1)`: local statistics under a normalised Gaussian window
(radius `int(3.5 * sigma + 0.5)` = 5), the SSIM map over the "valid" positions only (skimage
computes it everywhere, then crops the 5-pixel border), averaged per channel, then over channels.
The face-animation literature (FOMM-style evaluations) reports this Gaussian-window variant; the
uniform 7x7 window of skimage's defaults gives different numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

K1, K2 = 0.01, 0.03
SIGMA = 1.5
TRUNCATE = 3.5


def gaussian_window(sigma: float = SIGMA, truncate: float = TRUNCATE) -> np.ndarray:
  """The normalised 1-D Gaussian of `scipy.ndimage.gaussian_filter` (length 2r+1)."""
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  w = np.exp(-0.5 * (x / sigma) ** 2)
  return (w / w.sum()).astype(np.float32)


def _filter_valid(x: jax.Array, window: jax.Array) -> jax.Array:
  """Separable Gaussian filtering of every channel, 'valid' positions only: (B, H, W, C) ->
  (B, H-2r, W-2r, C)."""
  channels = x.shape[-1]
  k = window.shape[0]
  rows = jnp.tile(window.reshape(k, 1, 1, 1), (1, 1, 1, channels))
  cols = jnp.tile(window.reshape(1, k, 1, 1), (1, 1, 1, channels))
  dn = ('NHWC', 'HWIO', 'NHWC')
  x = lax.conv_general_dilated(x, rows, (1, 1), 'VALID', dimension_numbers=dn,
                               feature_group_count=channels, precision=lax.Precision.HIGHEST)
  return lax.conv_general_dilated(x, cols, (1, 1), 'VALID', dimension_numbers=dn,
                                  feature_group_count=channels, precision=lax.Precision.HIGHEST)


def ssim(prediction: jax.Array, target: jax.Array, data_range: float = 1.0,
         sigma: float = SIGMA) -> jax.Array:
  """Mean SSIM per image.

  Args:
    prediction, target: (B, H, W, C) images in [0, data_range], H and W at least 11.
    data_range: the dynamic range L of the constants C1 = (0.01 L)^2, C2 = (0.03 L)^2.
    sigma: the Gaussian window's standard deviation.

  Returns:
    (B,) mean SSIM (over valid window positions, then channels), in [-1, 1].
  """
  window = jnp.asarray(gaussian_window(sigma))
  if min(prediction.shape[1:3]) < window.shape[0]:
    raise ValueError(f'SSIM needs images of at least {window.shape[0]} pixels a side, got '
                     f'{prediction.shape[1:3]}')
  x = prediction.astype(jnp.float32)
  y = target.astype(jnp.float32)
  c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
  mx, my = _filter_valid(x, window), _filter_valid(y, window)
  vx = _filter_valid(x * x, window) - mx * mx
  vy = _filter_valid(y * y, window) - my * my
  cxy = _filter_valid(x * y, window) - mx * my
  s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
  return jnp.mean(s, axis=(1, 2, 3))
