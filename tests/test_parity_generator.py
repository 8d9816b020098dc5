"""Keypoint detector and generator against the official PyTorch outputs in the parity fixture."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import fixture_state_dict, nchw_to_nhwc
from g3fa_jax import model_config
from g3fa_jax.convert.state_dict import state_dict_to_variables
from g3fa_jax.models.networks import build_generator, build_kp_detector
from g3fa_jax.models.batch_norm import BatchNorm
from g3fa_jax.ops.antialias import kernel_from_buffer

KP_FIELDS = ('value', 'jacobian')


def _count(tree) -> int:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


@pytest.fixture(scope='module')
def models(official_fixture, fixture_model_config):
  # The fixture stores its weights and buffers rounded to bfloat16, including the anti-alias
  # kernels, and its outputs were computed with those; use the stored kernel for parity.
  kernel = kernel_from_buffer(official_fixture['param/kp_detector/down.weight'])
  assert kernel == kernel_from_buffer(
      official_fixture['param/generator/dense_motion_network.down.weight'])
  kp_detector = build_kp_detector(fixture_model_config, antialias_kernel=kernel)
  generator = build_generator(fixture_model_config, antialias_kernel=kernel)

  source = jnp.asarray(nchw_to_nhwc(official_fixture['in/source']))
  driving = jnp.asarray(nchw_to_nhwc(official_fixture['in/driving']))
  kp = {k: jnp.asarray(official_fixture[f'out/eval/kp_source/{k}']) for k in KP_FIELDS}
  kp_template = jax.eval_shape(lambda: kp_detector.init(jax.random.PRNGKey(0), source, False))
  gen_template = jax.eval_shape(
      lambda: generator.init(jax.random.PRNGKey(0), source, kp, kp, False))
  kp_vars = state_dict_to_variables(
      fixture_state_dict(official_fixture, 'kp_detector'), kp_template,
      source='fixture kp_detector', ignored=('down.weight',))
  gen_vars = state_dict_to_variables(
      fixture_state_dict(official_fixture, 'generator'), gen_template,
      source='fixture generator', ignored=('dense_motion_network.down.weight',))
  return dict(kp_detector=kp_detector, generator=generator, kp_vars=kp_vars, gen_vars=gen_vars,
              source=source, driving=driving)


def test_kp_detector_eval(models, official_fixture):
  detect = jax.jit(lambda v, x: models['kp_detector'].apply(v, x, False))
  for name, image in (('kp_source', models['source']), ('kp_driving', models['driving'])):
    kp = detect(models['kp_vars'], image)
    for field in KP_FIELDS:
      np.testing.assert_allclose(np.asarray(kp[field]),
                                 official_fixture[f'out/eval/{name}/{field}'], atol=1e-4, rtol=0,
                                 err_msg=f'{name}/{field}')


def test_generator_eval(models, official_fixture):
  kp_source = {k: jnp.asarray(official_fixture[f'out/eval/kp_source/{k}']) for k in KP_FIELDS}
  kp_driving = {k: jnp.asarray(official_fixture[f'out/eval/kp_driving/{k}']) for k in KP_FIELDS}
  out = jax.jit(lambda v, s, a, b: models['generator'].apply(v, s, a, b, False))(
      models['gen_vars'], models['source'], kp_source, kp_driving)
  ref = lambda k: official_fixture[f'out/eval/generator/{k}']
  expected = {
      'mask': nchw_to_nhwc(ref('mask')),
      'occlusion_map': nchw_to_nhwc(ref('occlusion_map')),
      'deformed': nchw_to_nhwc(ref('deformed')),
      'sparse_deformed': np.moveaxis(ref('sparse_deformed'), 2, -1),  # (B, K+1, h, w, C)
      'prediction': nchw_to_nhwc(ref('prediction')),
  }
  for key, want in expected.items():
    got = np.asarray(out[key])
    assert got.shape == want.shape, key
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0, err_msg=key)
  b, h, w, _ = expected['mask'].shape
  assert out['deformation'].shape == (b, h, w, 2)


def test_generator_with_the_source_encoded_once_matches_the_official(models, official_fixture):
  """Animation encodes its source once (`encode_only`) and passes the features back for every
  driving frame: the official prediction still comes out."""
  kp_source = {k: jnp.asarray(official_fixture[f'out/eval/kp_source/{k}']) for k in KP_FIELDS}
  kp_driving = {k: jnp.asarray(official_fixture[f'out/eval/kp_driving/{k}']) for k in KP_FIELDS}
  generator, variables, source = models['generator'], models['gen_vars'], models['source']
  features = generator.apply(variables, source, None, None, False,
                             encode_only=True)['source_features']
  assert features.shape[-1] == generator.render_params['output_channels']
  out = generator.apply(variables, source, kp_source, kp_driving, False,
                        source_features=features)
  np.testing.assert_allclose(np.asarray(out['prediction']),
                             nchw_to_nhwc(official_fixture['out/eval/generator/prediction']),
                             atol=1e-4, rtol=0)


def test_generator_train_mode_prediction(models, official_fixture):
  """As the official GeneratorFullModel: keypoints and generator all with batch statistics."""
  kp_detector, generator = models['kp_detector'], models['generator']

  @jax.jit
  def step(kp_vars, gen_vars, source, driving):
    kp_source, _ = kp_detector.apply(kp_vars, source, True, mutable=['batch_stats'])
    kp_driving, _ = kp_detector.apply(kp_vars, driving, True, mutable=['batch_stats'])
    out, new_state = generator.apply(gen_vars, source, kp_source, kp_driving, True,
                                     mutable=['batch_stats'])
    return out['prediction'], new_state

  prediction, new_state = step(models['kp_vars'], models['gen_vars'], models['source'],
                               models['driving'])
  np.testing.assert_allclose(np.asarray(prediction),
                             nchw_to_nhwc(official_fixture['out/train/generator/prediction']),
                             rtol=1e-4, atol=0)
  old = jax.tree_util.tree_leaves(models['gen_vars']['batch_stats'])
  new = jax.tree_util.tree_leaves(new_state['batch_stats'])
  assert len(old) == len(new) and all(a.shape == b.shape for a, b in zip(old, new))
  assert any(not np.allclose(a, b) for a, b in zip(old, new))


def test_batch_norm_matches_torch_formulas():
  x = np.random.default_rng(0).standard_normal((3, 4, 5, 2)).astype(np.float32) * 2 + 1
  bn = BatchNorm()
  variables = bn.init(jax.random.PRNGKey(0), x, True)
  np.testing.assert_array_equal(variables['batch_stats']['mean'], np.zeros(2))
  np.testing.assert_array_equal(variables['batch_stats']['var'], np.ones(2))
  variables = {'params': {'scale': jnp.array([1.5, 0.5]), 'bias': jnp.array([0.1, -0.2])},
               'batch_stats': {'mean': jnp.array([0.3, -0.1]), 'var': jnp.array([2.0, 0.5])}}
  y, state = bn.apply(variables, x, True, mutable=['batch_stats'])
  flat = x.reshape(-1, 2).astype(np.float64)
  mean, var, unbiased = flat.mean(0), flat.var(0), flat.var(0, ddof=1)
  want = (x - mean) / np.sqrt(var + 1e-5) * [1.5, 0.5] + [0.1, -0.2]
  np.testing.assert_allclose(np.asarray(y), want, atol=1e-5)
  # PyTorch momentum 0.1; the running variance takes the unbiased batch variance.
  np.testing.assert_allclose(state['batch_stats']['mean'],
                             0.9 * np.array([0.3, -0.1]) + 0.1 * mean, rtol=1e-6)
  np.testing.assert_allclose(state['batch_stats']['var'],
                             0.9 * np.array([2.0, 0.5]) + 0.1 * unbiased, rtol=1e-6)
  y_eval = bn.apply(variables, x, False)
  want_eval = (x - [0.3, -0.1]) / np.sqrt(np.array([2.0, 0.5]) + 1e-5) * [1.5, 0.5] + [0.1, -0.2]
  np.testing.assert_allclose(np.asarray(y_eval), want_eval, atol=1e-5)


def test_fresh_kp_detector_jacobians_are_identity(fixture_model_config):
  kp_detector = build_kp_detector(fixture_model_config)
  images = jax.random.uniform(jax.random.PRNGKey(1), (2, 64, 64, 3))
  variables = jax.jit(lambda key, x: kp_detector.init(key, x, False))(jax.random.PRNGKey(0), images)
  jac_params = variables['params']['jacobian']
  np.testing.assert_array_equal(jac_params['kernel'], 0)
  np.testing.assert_array_equal(jac_params['bias'], np.tile([1, 0, 0, 1], 15))
  kp = jax.jit(lambda v, x: kp_detector.apply(v, x, False))(variables, images)
  assert kp['value'].shape == (2, 15, 2)
  np.testing.assert_allclose(kp['jacobian'], np.broadcast_to(np.eye(2), (2, 15, 2, 2)), atol=1e-6)
  assert np.all(np.abs(kp['value']) <= 1)


def test_vox256_parameter_counts():
  cfg = model_config.vox256_model_config()
  images = jnp.zeros((1, 128, 128, 3))  # The 5-block hourglasses need 128 pixels at scale 1/4.
  kp = {'value': jnp.zeros((1, 15, 2)), 'jacobian': jnp.broadcast_to(jnp.eye(2), (1, 15, 2, 2))}
  kp_vars = jax.eval_shape(
      lambda: build_kp_detector(cfg).init(jax.random.PRNGKey(0), images, False))
  gen_vars = jax.eval_shape(
      lambda: build_generator(cfg).init(jax.random.PRNGKey(0), images, kp, kp, False))
  assert _count(kp_vars['params']) == 14_258_268
  assert _count(gen_vars['params']) == 47_096_437


def test_renderer_composites_before_its_last_linear_layer_as_after_it():
  # RenderModel composites the floors before the MLP's last layer (8x fewer multiply-adds, no
  # 256-wide colour per sample); the official code composites after it. Same sum.
  from g3fa_jax.models.volume_renderer import MultiHeadNeRFModel, volume_render
  nerf = MultiHeadNeRFModel(hidden_size=16, out_channels=12)
  rgb_in = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 8, 4))
  sigma_in = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 6, 8, 4))
  variables = nerf.init(jax.random.PRNGKey(2), rgb_in, sigma_in)
  after = volume_render(*nerf.apply(variables, rgb_in, sigma_in))
  before = nerf.apply(variables, rgb_in, sigma_in, method=MultiHeadNeRFModel.render)
  assert before.shape == (2, 5, 6, 12)
  np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
  # A large last bias: it is weighted by the floors' total weight (< 1), not added once.
  params = jax.tree_util.tree_map(lambda x: x, variables['params'])
  params['layer6']['bias'] = jnp.full_like(params['layer6']['bias'], 3.)
  after = volume_render(*nerf.apply({'params': params}, rgb_in, sigma_in))
  before = nerf.apply({'params': params}, rgb_in, sigma_in, method=MultiHeadNeRFModel.render)
  np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
