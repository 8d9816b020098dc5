"""Keypoints kept apart: a g3fa-jax training option against keypoints that all sit in one place.

A keypoint is the expectation of the coordinate grid under its heatmap. An untrained detector's
heatmaps are nearly uniform, so every keypoint starts at the middle of the frame, and on small
data nothing in FOMM's losses pulls them apart quickly: the equivariance losses are nearly met by
keypoints that stay at the centre, and a keypoint whose heatmap is spread over the whole face
barely moves when the head turns. Measured on the synthetic heads: after the whole main job all
15 keypoints were within 0.1 of the frame's centre (docs/synthetic_training.md).
The separation loss of Zhang et al. (CVPR 2018, "Unsupervised discovery of object landmarks as
structural representations") penalises each pair of keypoints by a Gaussian of their distance, so
the detector must make its heatmaps peaked and put them at different places.
"""

from __future__ import annotations

import jax.numpy as jnp


def keypoint_separation(values: jnp.ndarray, sigma: float = 0.1) -> jnp.ndarray:
  """Mean over pairs i != j of exp(-|kp_i - kp_j|^2 / (2 sigma^2)).

  Args:
    values: (B, K, 2) keypoints in [-1, 1].
    sigma: the distance (in [-1, 1] units) below which two keypoints are considered together.

  Returns:
    Scalar in [0, 1]: 1 when all keypoints coincide, about 0 when they are all further apart than
    a few sigma.
  """
  k = values.shape[1]
  if k < 2:
    return jnp.zeros((), values.dtype)
  squared = jnp.sum((values[:, :, None] - values[:, None]) ** 2, axis=-1)  # (B, K, K)
  close = jnp.exp(-squared / (2 * sigma ** 2)) * (1 - jnp.eye(k, dtype=values.dtype))
  return jnp.sum(close, axis=(1, 2)).mean() / (k * (k - 1))


def pair_separation(kp_source: dict, kp_driving: dict, sigma: float = 0.1) -> jnp.ndarray:
  """The mean of `keypoint_separation` over a pair's source and driving keypoints
  ({'value': (B, K, 2)} each): what the training losses weigh."""
  return (keypoint_separation(kp_source['value'], sigma)
          + keypoint_separation(kp_driving['value'], sigma)) / 2
