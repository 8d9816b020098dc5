"""Parity of the Unsup3D depth network and the depth/normal pipeline with the official wrapper."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import fixture_state_dict, nchw_to_nhwc
from g3fa_jax.convert.state_dict import state_dict_to_variables
from g3fa_jax.models.inverse_renderer import unsup3d_depth_and_normal
from g3fa_jax.models.networks import build_unsup3d
from g3fa_jax.models.unsup3d import UNSUP3D_TRANSPOSED_CONVS


@pytest.fixture(scope='module')
def unsup3d(official_fixture, fixture_settings):
  cfg = ml_collections.ConfigDict(fixture_settings['unsup3d'])
  net = build_unsup3d(cfg)
  template = jax.eval_shape(net.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
  variables = state_dict_to_variables(fixture_state_dict(official_fixture, 'unsup3d'), template,
                                      source='fixture unsup3d',
                                      transposed_convs=UNSUP3D_TRANSPOSED_CONVS)
  run = jax.jit(lambda v, im: unsup3d_depth_and_normal(net.apply, v, im, cfg))
  return net, variables, cfg, run


def test_depth_and_normal_match_official(official_fixture, unsup3d):
  _, variables, _, run = unsup3d
  depth, normal = run(variables, nchw_to_nhwc(official_fixture['in/driving']))
  want_depth = nchw_to_nhwc(official_fixture['out/eval/unsup/depth'])
  want_normal = nchw_to_nhwc(official_fixture['out/eval/unsup/normal'])
  assert depth.shape == want_depth.shape == (2, 64, 64, 1)
  assert normal.shape == want_normal.shape == (2, 64, 64, 3)
  np.testing.assert_allclose(np.asarray(depth), want_depth, rtol=0, atol=1e-4)
  # Normals are cross products of differences of neighbouring points: 2e-4 (fixture README).
  np.testing.assert_allclose(np.asarray(normal), want_normal, rtol=0, atol=2e-4)


def test_gradient_wrt_images(official_fixture, unsup3d):
  net, variables, cfg, _ = unsup3d
  images = jnp.asarray(nchw_to_nhwc(official_fixture['in/driving']))

  def loss(im):
    depth, normal = unsup3d_depth_and_normal(net.apply, variables, im, cfg)
    return jnp.sum(depth ** 2) + jnp.sum(normal[..., :2] ** 2)

  grad = np.asarray(jax.jit(jax.grad(loss))(images))
  assert grad.shape == images.shape
  assert np.isfinite(grad).all()
  assert np.abs(grad).max() > 0


def test_large_input_keeps_its_size(unsup3d):
  net, variables, cfg, _ = unsup3d
  images = jax.random.uniform(jax.random.PRNGKey(1), (1, 256, 256, 3))
  depth, normal = jax.jit(lambda im: unsup3d_depth_and_normal(net.apply, variables, im, cfg))(
      images)
  assert depth.shape == (1, 256, 256, 1) and normal.shape == (1, 256, 256, 3)
  assert np.isfinite(np.asarray(depth)).all() and np.isfinite(np.asarray(normal)).all()
  assert float(depth.min()) >= cfg.min_depth - 1e-6 and float(depth.max()) <= cfg.max_depth + 1e-6
  # Bilinear upsampling of unit normals shortens them a little, never lengthens them.
  lengths = np.linalg.norm(np.asarray(normal), axis=-1)
  assert lengths.max() <= 1 + 1e-5


def test_vox256_parameter_count():
  from g3fa_jax.model_config import unsup3d_config
  cfg = unsup3d_config()
  net = build_unsup3d(cfg)
  shapes = jax.eval_shape(net.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
  assert sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(shapes['params'])) == (
      12_979_648)
