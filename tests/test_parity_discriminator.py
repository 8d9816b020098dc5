"""Parity of the three G3FA discriminators (spectral norm) with the official PyTorch outputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import fixture_state_dict, nchw_to_nhwc
from g3fa_jax.convert.state_dict import state_dict_to_variables
from g3fa_jax.models.discriminator import ensemble_patch_maps
from g3fa_jax.models.networks import build_discriminator
from g3fa_jax.models.spectral_norm import kernel_matrix

# (official model name, fixture output tag, fixture input key, channels)
CASES = [
    ('discriminator', 'd1', 'in/driving', 3),
    ('discriminator2', 'd2', 'out/eval/unsup/depth', 1),
    ('discriminator3', 'd3', 'out/eval/unsup/normal', 3),
]


def _load(official_fixture, model_cfg, name: str, channels: int):
  disc = build_discriminator(model_cfg, channels)
  template = jax.eval_shape(disc.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, channels)))
  variables = state_dict_to_variables(fixture_state_dict(official_fixture, name), template,
                                      source=f'fixture {name}')
  return disc, variables


def _tolerance(tag: str, key: str) -> float:
  # The depth map fed to d2 is nearly constant (spatial std 0.03 around 1.0), so the first
  # InstanceNorm divides conv outputs of magnitude ~1.5 by a spatial std down to 0.008 and
  # magnifies float32 rounding ~200x: the fixture itself is 1.1e-4 away from a float64 run of the
  # official model on feature_map_3 (the official float32 model rerun here: 1.8e-4; this port:
  # 0.9e-4 from float64). Elsewhere the 1e-4 of the fixture README holds with a wide margin.
  if tag == 'd2' and key in ('feature_map_1', 'feature_map_2', 'feature_map_3'):
    return 2e-4
  return 1e-4


@pytest.mark.parametrize('name,tag,input_key,channels', CASES)
def test_eval_matches_official(official_fixture, fixture_model_config, name, tag, input_key,
                               channels):
  disc, variables = _load(official_fixture, fixture_model_config, name, channels)
  x = nchw_to_nhwc(official_fixture[input_key])
  out = jax.jit(lambda v, im: disc.apply(v, {'prediction_1': im}, train=False))(variables, x)
  got = {f'feature_map_{i}': fm for i, fm in enumerate(out['feature_maps_1'])}
  got['prediction_map'] = out['prediction_map_1']
  assert len(out['feature_maps_1']) == 4
  for key, value in got.items():
    want = nchw_to_nhwc(official_fixture[f'out/eval/{tag}/{key}'])
    assert value.shape == want.shape, key
    np.testing.assert_allclose(np.asarray(value), want, rtol=0, atol=_tolerance(tag, key),
                               err_msg=f'{name} {key}')


def test_array_input_equals_dict_input(official_fixture, fixture_model_config):
  disc, variables = _load(official_fixture, fixture_model_config, 'discriminator', 3)
  x = nchw_to_nhwc(official_fixture['in/driving'])
  a = disc.apply(variables, x)['prediction_map_1']
  b = disc.apply(variables, {'prediction_1': x})['prediction_map_1']
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _torch_power_iteration(w_mat: np.ndarray, u: np.ndarray, eps: float = 1e-12):
  """torch.nn.utils.spectral_norm's training update, in float64 numpy."""
  normalize = lambda a: a / max(np.linalg.norm(a), eps)
  v = normalize(w_mat.T @ u)
  u = normalize(w_mat @ v)
  return u, v, float(u @ w_mat @ v)


def test_train_mode_power_iteration(official_fixture, fixture_model_config):
  disc, variables = _load(official_fixture, fixture_model_config, 'discriminator', 3)
  sd = fixture_state_dict(official_fixture, 'discriminator')
  x = nchw_to_nhwc(official_fixture['in/driving'])
  _, updated = disc.apply(variables, x, train=True, mutable=['spectral'])
  layers = [f'down_blocks.{i}.conv' for i in range(4)] + ['conv']
  for layer in layers:
    torch_key = f'discs.1.{layer}'
    node_new, node_param = updated['spectral']['discs_1'], variables['params']['discs_1']
    for part in layer.replace('down_blocks.', 'down_blocks_').split('.'):
      node_new, node_param = node_new[part], node_param[part]
    w_mat = sd[f'{torch_key}.weight_orig'].reshape(sd[f'{torch_key}.weight_orig'].shape[0], -1)
    np.testing.assert_array_equal(np.asarray(kernel_matrix(jnp.asarray(node_param['kernel']))),
                                  w_mat)
    u_want, v_want, sigma_want = _torch_power_iteration(
        w_mat.astype(np.float64), sd[f'{torch_key}.weight_u'].astype(np.float64))
    u_got, v_got = np.asarray(node_new['u']), np.asarray(node_new['v'])
    np.testing.assert_allclose(u_got, u_want, atol=1e-6, err_msg=torch_key)
    np.testing.assert_allclose(v_got, v_want, atol=1e-6, err_msg=torch_key)
    sigma_got = float(u_got @ w_mat @ v_got)
    np.testing.assert_allclose(sigma_got, sigma_want, rtol=1e-5, err_msg=torch_key)
    if u_got.size > 1:  # With one output channel, u = +-1 and v = +-W/|W| are already fixed.
      assert np.abs(u_got - sd[f'{torch_key}.weight_u']).max() > 1e-6, torch_key
      assert np.abs(v_got - sd[f'{torch_key}.weight_v']).max() > 1e-6, torch_key


def test_train_mode_uses_updated_vectors(official_fixture, fixture_model_config):
  """Train mode = eval mode with the vectors after one power iteration (torch's semantics)."""
  disc, variables = _load(official_fixture, fixture_model_config, 'discriminator', 3)
  x = nchw_to_nhwc(official_fixture['in/driving'])
  train_out, updated = disc.apply(variables, x, train=True, mutable=['spectral'])
  eval_out = disc.apply({'params': variables['params'], 'spectral': updated['spectral']}, x)
  np.testing.assert_allclose(np.asarray(train_out['prediction_map_1']),
                             np.asarray(eval_out['prediction_map_1']), atol=1e-6)
  stale = disc.apply(variables, x)['prediction_map_1']
  assert np.abs(np.asarray(stale) - np.asarray(train_out['prediction_map_1'])).max() > 1e-7


def test_no_gradient_through_vectors(official_fixture, fixture_model_config):
  disc, variables = _load(official_fixture, fixture_model_config, 'discriminator', 3)
  x = nchw_to_nhwc(official_fixture['in/driving'])

  def loss(spectral, params):
    out, _ = disc.apply({'params': params, 'spectral': spectral}, x, train=True,
                        mutable=['spectral'])
    return jnp.sum(out['prediction_map_1'] ** 2)

  g_spectral, g_params = jax.grad(loss, argnums=(0, 1))(variables['spectral'], variables['params'])
  assert all(np.all(np.asarray(g) == 0) for g in jax.tree_util.tree_leaves(g_spectral))
  kernel_grad = g_params['discs_1']['down_blocks_0']['conv']['kernel']
  assert np.isfinite(np.asarray(kernel_grad)).all() and np.abs(np.asarray(kernel_grad)).max() > 0


def test_ensemble_patch_maps():
  a, b, c = (jnp.full((1, 2, 2, 1), v) for v in (1.0, 2.0, 4.0))
  out = ensemble_patch_maps(a, b, c, 1.0, 0.25, 0.25)
  np.testing.assert_allclose(np.asarray(out), (1.0 + 0.5 + 1.0) / 1.5, rtol=1e-6)


# RGB and normal discriminators take 3 channels, the depth one 1.
@pytest.mark.parametrize('channels,expected', [(3, 2_758_849), (1, 2_756_801)])
def test_vox256_parameter_count(channels, expected):
  from g3fa_jax.model_config import vox256_model_config
  disc = build_discriminator(vox256_model_config(), channels)
  shapes = jax.eval_shape(disc.init, jax.random.PRNGKey(0), jnp.zeros((1, 256, 256, channels)))
  assert sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(shapes['params'])) == expected
  assert set(shapes) == {'params', 'spectral'}
