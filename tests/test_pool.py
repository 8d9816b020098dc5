"""2x2 pools from strided slices against flax's reduce-window pools (values and gradients)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from g3fa_jax.ops.pool import avg_pool2x2, max_pool2x2


@pytest.mark.parametrize('shape', [(2, 8, 10, 3), (1, 9, 7, 4)])
def test_max_pool_and_its_gradient_match_reduce_window(shape):
  x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
  want = nn.max_pool(x, (2, 2), strides=(2, 2))
  np.testing.assert_array_equal(max_pool2x2(x), want)
  cotangent = jnp.asarray(np.random.default_rng(1).normal(size=want.shape), jnp.float32)
  grad = jax.grad(lambda v: jnp.sum(max_pool2x2(v) * cotangent))(x)
  grad_want = jax.grad(lambda v: jnp.sum(nn.max_pool(v, (2, 2), strides=(2, 2)) * cotangent))(x)
  np.testing.assert_array_equal(grad, grad_want)


def test_max_pool_gradient_goes_to_the_first_maximum_of_a_tie():
  # After a ReLU whole windows are 0: the gradient must go to one pixel, the first in scan order
  # (PyTorch's and reduce-window's choice), not be split.
  x = jnp.asarray([[0., 0., 2., 5.], [0., 0., 5., 1.]])[None, :, :, None]
  grad = jax.grad(lambda v: jnp.sum(max_pool2x2(v) * jnp.asarray([3., 7.])[None, None, :, None]))(x)
  np.testing.assert_array_equal(grad[0, :, :, 0], [[3., 0., 0., 7.], [0., 0., 0., 0.]])
  np.testing.assert_array_equal(
      grad, jax.grad(lambda v: jnp.sum(nn.max_pool(v, (2, 2), strides=(2, 2))
                                       * jnp.asarray([3., 7.])[None, None, :, None]))(x))


@pytest.mark.parametrize('shape', [(2, 8, 10, 3), (1, 9, 7, 4)])
def test_avg_pool_and_its_gradient_match_reduce_window(shape):
  x = jnp.asarray(np.random.default_rng(2).normal(size=shape), jnp.float32)
  want = nn.avg_pool(x, (2, 2), strides=(2, 2))
  got = avg_pool2x2(x)
  assert got.shape == want.shape == (shape[0], shape[1] // 2, shape[2] // 2, shape[3])
  np.testing.assert_allclose(got, want, atol=1e-6)
  cotangent = jnp.asarray(np.random.default_rng(3).normal(size=want.shape), jnp.float32)
  grad = jax.grad(lambda v: jnp.sum(avg_pool2x2(v) * cotangent))(x)
  grad_want = jax.grad(lambda v: jnp.sum(nn.avg_pool(v, (2, 2), strides=(2, 2)) * cotangent))(x)
  np.testing.assert_allclose(grad, grad_want, atol=1e-7)
