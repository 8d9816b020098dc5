"""The mask teacher: the nearest candidate motion per cell, and a cross-entropy that is 0 for a
mask on it, log(K+1) for a uniform one, and whose gradient raises the right channel."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from g3fa_jax.losses import mask_teacher
from g3fa_jax.models.dense_motion import sparse_motions


def _pair():
  """Two keypoints moving apart by +-0.2 in x on a 4x4 grid; the true motion follows keypoint 1
  on the left half and keypoint 2 on the right half."""
  kp_driving = {'value': jnp.array([[[-0.5, 0.], [0.5, 0.]]], jnp.float32)}
  kp_source = {'value': jnp.array([[[-0.7, 0.], [0.7, 0.]]], jnp.float32)}
  candidates = sparse_motions((4, 4), kp_driving, kp_source)  # (1, 3, 4, 4, 2)
  truth = jnp.where(jnp.arange(4)[None, None, :, None] < 2, candidates[:, 1], candidates[:, 2])
  return candidates, truth


def test_nearest_candidate_picks_each_cells_true_motion():
  candidates, truth = _pair()
  pick = np.asarray(mask_teacher.nearest_candidate(candidates, truth))
  assert pick.shape == (1, 4, 4) and pick.dtype == np.int32
  np.testing.assert_array_equal(pick[0, :, :2], 1)
  np.testing.assert_array_equal(pick[0, :, 2:], 2)
  # Where the truth is no motion, the zero-motion candidate (channel 0) is picked.
  still = mask_teacher.nearest_candidate(candidates, candidates[:, 0])
  np.testing.assert_array_equal(np.asarray(still), 0)


def test_cross_entropy_zero_on_the_pick_log_k_uniform_and_its_gradient():
  candidates, truth = _pair()
  pick = mask_teacher.nearest_candidate(candidates, truth)
  one_hot = jax.nn.one_hot(pick, 3)
  assert float(mask_teacher.mask_cross_entropy(one_hot, candidates, truth)) < 1e-6
  uniform = jnp.full((1, 4, 4, 3), 1 / 3)
  np.testing.assert_allclose(float(mask_teacher.mask_cross_entropy(uniform, candidates, truth)),
                             np.log(3), rtol=1e-5)

  def loss(logits):
    return mask_teacher.mask_cross_entropy(jax.nn.softmax(logits), candidates, truth)

  grad = np.asarray(jax.grad(loss)(jnp.zeros((1, 4, 4, 3))))
  # Descending the loss raises the picked channel's logit and lowers the others.
  assert (grad[0, :, :2, 1] < 0).all() and (grad[0, :, 2:, 2] < 0).all()
  assert (grad[..., 0] > 0).all()
  # No gradient reaches the candidates through the pick.
  assert not np.asarray(jax.grad(lambda c: mask_teacher.mask_cross_entropy(
      uniform, c, truth))(candidates)).any()


def test_cross_entropy_rejects_mismatched_shapes():
  candidates, truth = _pair()
  with pytest.raises(ValueError, match='do not match'):
    mask_teacher.mask_cross_entropy(jnp.ones((1, 4, 4, 2)), candidates, truth)
