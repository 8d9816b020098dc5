"""The dense motion's mask taught which motion each cell should take, from a known true motion.

A g3fa-jax option for the synthetic heads (`demo.motion_warmup_mask_teacher` in the job's motion
warm-up; 0 in every config). FOMM's dense motion network mixes K + 1 candidate motions (zero
motion, then each keypoint's local affine motion) by a softmax mask. On the synthetic heads that
mask settles on zero motion within tens of steps and then passes no gradient, however well the
keypoints follow the face (docs/synthetic_training.md, "What the keypoint detector can see"),
though the keypoints' own motions, picked per cell by the true motion, come within 0.02-0.04 of
the true motion's held-out L1. This loss is that pick as a classification target: the cross-
entropy between the mask and, per cell, the candidate nearest the true sampling grid. Unlike an
L1 between the mixed motion and the true one (which the network meets with the conditional mean,
a motion shrunk wherever the keypoints leave it unsure), a class target asks for one candidate,
not an average. On real faces an optical-flow estimate would play the true motion's part.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def nearest_candidate(candidates: jax.Array, truth: jax.Array) -> jax.Array:
  """Per cell, the index of the candidate sampling grid nearest the true one.

  Args:
    candidates: (B, K+1, h, w, 2) sampling grids (`dense_motion.sparse_motions`), in [-1, 1].
    truth: (B, h, w, 2) the true sampling grid at the same cells.

  Returns:
    (B, h, w) int32 indices in [0, K] (no gradient).
  """
  distance = jnp.sum(jnp.square(candidates - truth[:, None]), axis=-1)
  return jax.lax.stop_gradient(jnp.argmin(distance, axis=1).astype(jnp.int32))


def mask_cross_entropy(mask: jax.Array, candidates: jax.Array, truth: jax.Array,
                       eps: float = 1e-8) -> jax.Array:
  """Mean over cells of -log mask[nearest candidate]: a scalar, 0 when the mask puts all its
  weight on each cell's nearest candidate, log(K+1) for a uniform mask.

  Args:
    mask: (B, h, w, K+1) the dense motion's softmax mask (channel 0: zero motion).
    candidates: (B, K+1, h, w, 2) the candidates it mixes.
    truth: (B, h, w, 2) the true sampling grid.
  """
  if mask.shape[:3] != truth.shape[:3] or mask.shape[-1] != candidates.shape[1]:
    raise ValueError(f'mask_cross_entropy: mask {mask.shape}, candidates {candidates.shape} and '
                     f'truth {truth.shape} do not match ((B, h, w, K+1), (B, K+1, h, w, 2), '
                     '(B, h, w, 2))')
  pick = nearest_candidate(candidates, truth)
  chosen = jnp.take_along_axis(mask, pick[..., None], axis=-1)[..., 0]
  return -jnp.mean(jnp.log(chosen + eps))
