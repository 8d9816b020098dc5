"""Pyramid perceptual loss on VGG19 features (official `GeneratorFullModel`, `ImagePyramide`)."""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from g3fa_jax.ops.antialias import antialias_downsample

PYRAMID_SCALES = (1, 0.5, 0.25, 0.125)

FeatureFn = Callable[[jax.Array], Sequence[jax.Array]]


def image_pyramid(x: jax.Array, scales: Sequence[float] = PYRAMID_SCALES) -> dict[float, jax.Array]:
  """Anti-aliased downsamplings of a batch: {scale: (B, ceil(H*scale), ceil(W*scale), C)}.

  Scale 1 is the input itself.
  """
  return {scale: antialias_downsample(x, scale) for scale in scales}


def feature_maps_needed(weights: Sequence[float]) -> int:
  """How many leading feature maps a perceptual loss with these per-layer weights reads: up to the
  last non-zero weight (e.g. 3 for [10, 10, 10, 0, 0], so VGG19 can stop after relu3_1)."""
  nonzero = [i for i, w in enumerate(weights) if w != 0]
  return nonzero[-1] + 1 if nonzero else 0


def perceptual_loss(feature_fn: FeatureFn, generated: jax.Array, real: jax.Array,
                    weights: Sequence[float],
                    scales: Sequence[float] = PYRAMID_SCALES) -> jax.Array:
  """sum over scales s and layers i of weights[i] * mean|phi_i(gen_s) - stopgrad(phi_i(real_s))|.

  Args:
    feature_fn: images (B, h, w, 3) in [0, 1] -> list of feature maps, e.g. VGG19's relu1_1 ..
      relu5_1 (`functools.partial(Vgg19().apply, vgg_variables)`); one weight per map.
    generated: (B, H, W, 3) generated frames in [0, 1].
    real: (B, H, W, 3) real (driving) frames in [0, 1]; no gradient flows into their features.
    weights: per-layer weights (official: [10, 10, 10, 10, 10]); `feature_fn` may return fewer
      maps than weights when the weights past its last map are zero.
    scales: image pyramid scales (official train_params.scales).

  Returns:
    Scalar loss.
  """
  batch = generated.shape[0]
  total = jnp.zeros((), generated.dtype)
  for scale in scales:
    # One feature pass for both images: VGG has no batch-coupled layers.
    both = antialias_downsample(jnp.concatenate([generated, real], axis=0), scale)
    features = feature_fn(both)
    if not feature_maps_needed(weights) <= len(features) <= len(weights):
      raise ValueError(f'perceptual_loss: {len(weights)} weights {list(weights)} for '
                       f'{len(features)} feature maps')
    for weight, feature in zip(weights, features):
      diff = feature[:batch] - jax.lax.stop_gradient(feature[batch:])
      total = total + weight * jnp.mean(jnp.abs(diff))
  return total
