"""Per-image L1 (on the 0-255 scale, as the paper's Table 1 reports it) and PSNR."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# PSNR of a pixel-exact reconstruction would be infinite; the MSE is floored here (PSNR <= 100 dB).
MIN_MSE = 1e-10


def l1_255(prediction: jax.Array, target: jax.Array) -> jax.Array:
  """Mean absolute difference per image, in 0-255 units.

  Args:
    prediction, target: (B, H, W, C) images in [0, 1].

  Returns:
    (B,) `255 * mean |prediction - target|` over pixels and channels.
  """
  return 255.0 * jnp.mean(jnp.abs(prediction - target), axis=(1, 2, 3))


def psnr(prediction: jax.Array, target: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Peak signal-to-noise ratio per image, in dB.

  Args:
    prediction, target: (B, H, W, C) images in [0, data_range].
    data_range: the peak value (1 for [0, 1] images).

  Returns:
    (B,) `10 log10(data_range^2 / mse)` with the MSE over pixels and channels (floored at
    `MIN_MSE * data_range^2`).
  """
  mse = jnp.mean(jnp.square(prediction - target), axis=(1, 2, 3))
  return 10.0 * jnp.log10(data_range ** 2 / jnp.maximum(mse, MIN_MSE * data_range ** 2))
