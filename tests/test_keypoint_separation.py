"""The keypoint separation loss (g3fa_jax/losses/keypoint_separation.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from g3fa_jax.losses.keypoint_separation import keypoint_separation


def test_one_when_together_zero_when_far_apart():
  together = jnp.zeros((2, 5, 2))
  assert float(keypoint_separation(together, 0.1)) == pytest.approx(1.0)
  corners = jnp.asarray([[[-1., -1.], [1., -1.], [-1., 1.], [1., 1.]]])
  assert float(keypoint_separation(corners, 0.1)) < 1e-20
  # Two keypoints sigma apart: exp(-1/2) for the pair.
  pair = jnp.asarray([[[0., 0.], [0.1, 0.]]])
  assert float(keypoint_separation(pair, 0.1)) == pytest.approx(np.exp(-0.5), rel=1e-6)
  assert float(keypoint_separation(jnp.zeros((1, 1, 2)))) == 0.


def test_its_gradient_pushes_close_keypoints_apart():
  values = jnp.asarray([[[0., 0.], [0.05, 0.], [0.5, 0.5]]])
  grad = jax.grad(lambda v: keypoint_separation(v, 0.1))(values)
  moved = values - 0.01 * grad / jnp.abs(grad).max()
  assert float(moved[0, 1, 0] - moved[0, 0, 0]) > 0.05
  assert float(keypoint_separation(moved, 0.1)) < float(keypoint_separation(values, 0.1))
