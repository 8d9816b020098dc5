"""Keypoints anchored to known facial landmarks: an L1 between keypoint k and landmark k.

A g3fa-jax option for the synthetic heads (`loss_weights.landmarks` in G3FA's training,
`demo.motion_warmup_landmarks` in the job's motion warm-up; 0 in the official recipe). FOMM's
keypoints are unsupervised; on the synthetic heads they settle on the outline and shading and
follow a turning face a third of the way (docs/synthetic_training.md). The landmarks of
`g3fa_jax.synthetic.landmarks` move with the face's surface, so pulling the keypoints onto them
is the role a face landmark detector would play on real faces.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp


def landmark_l1(keypoints: jax.Array, landmarks: jax.Array) -> jax.Array:
  """Mean |keypoint k - landmark k| over the first min(K, L) of keypoints (B, K, 2) and
  landmarks (B, L, 2), both in [-1, 1] (x, y): a scalar."""
  n = min(keypoints.shape[1], landmarks.shape[1])
  return jnp.mean(jnp.abs(keypoints[:, :n] - landmarks[:, :n]))


def pair_landmark_l1(kp_source: Mapping[str, jax.Array], kp_driving: Mapping[str, jax.Array],
                     source_landmarks: jax.Array, driving_landmarks: jax.Array) -> jax.Array:
  """The mean of `landmark_l1` over the source and driving frames of a batch of pairs."""
  return 0.5 * (landmark_l1(kp_source['value'], source_landmarks)
                + landmark_l1(kp_driving['value'], driving_landmarks))
