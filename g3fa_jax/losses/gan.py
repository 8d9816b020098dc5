"""Least-squares GAN and discriminator feature-matching losses (official `modules/model.py`)."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp


def lsgan_generator_loss(fake_map: jax.Array, weight: float = 1.0) -> jax.Array:
  """weight * mean((1 - D(fake))^2) over a patch map of any shape."""
  return weight * jnp.mean((1 - fake_map) ** 2)


def lsgan_discriminator_loss(real_map: jax.Array, fake_map: jax.Array,
                             weight: float = 1.0) -> jax.Array:
  """weight * mean((1 - D(real))^2 + D(fake)^2) over patch maps of the same shape."""
  return weight * jnp.mean((1 - real_map) ** 2 + fake_map ** 2)


def feature_matching_loss(real_features: Sequence[jax.Array], fake_features: Sequence[jax.Array],
                          weights: Sequence[float]) -> jax.Array:
  """sum_i weights[i] * mean|real_i - fake_i| over a discriminator's block outputs.

  Layers with weight 0 are skipped (as the official loop does). The real features are not
  stop-gradiented: they do not depend on the generator.
  """
  if not len(real_features) == len(fake_features) == len(weights):
    raise ValueError(f'feature_matching_loss: {len(real_features)} real, {len(fake_features)} '
                     f'fake feature maps and {len(weights)} weights')
  total = jnp.zeros((), fake_features[0].dtype)
  for weight, real, fake in zip(weights, real_features, fake_features):
    if weight == 0:
      continue
    total = total + weight * jnp.mean(jnp.abs(real - fake))
  return total
