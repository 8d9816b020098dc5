"""Training losses: TPS transform, LSGAN, feature matching, perceptual pyramid, and parity of one
official training step's losses with the fixture."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import fixture_state_dict, nchw_to_nhwc
from g3fa_jax import losses
from g3fa_jax.losses import equivariance
from g3fa_jax.losses import objective
from g3fa_jax.ops.antialias import antialias_downsample


# ----------------------------------------------------------------------------- TPS transform


def _numpy_warp(theta, control_points, control_params, coords):
  """The official `Transform.warp_coordinates` formula in float64 numpy.

  theta (B, 2, 3), control_points (..., 2), control_params (B, 1, P*P), coords (Bc, N, 2).
  """
  theta = np.asarray(theta, np.float64)
  coords = np.asarray(coords, np.float64)
  coords = np.broadcast_to(coords, (theta.shape[0],) + coords.shape[1:])
  affine = np.einsum('bij,bnj->bni', theta[:, :, :2], coords) + theta[:, None, :, 2]
  cp = np.asarray(control_points, np.float64).reshape(-1, 2)
  d = np.abs(coords[:, :, None, :] - cp[None, None]).sum(-1)  # L1 distance (Bc, N, P*P)
  kernel = d ** 2 * np.log(d + 1e-6) * np.asarray(control_params, np.float64)
  return affine + kernel.sum(-1)[..., None]  # the same offset added to x and y


def _random_tps(seed=0, batch=3, points=5, sigma_affine=0.05, sigma_tps=0.005):
  return equivariance.sample_tps(jax.random.PRNGKey(seed), batch, sigma_affine, sigma_tps, points)


def test_sample_tps_layout():
  tps = _random_tps(batch=4)
  assert tps['theta'].shape == (4, 2, 3)
  assert tps['control_points'].shape == (1, 5, 5, 2)
  assert tps['control_params'].shape == (4, 1, 25)
  np.testing.assert_array_equal(tps['control_points'][0, 0, :, 0], [-1, -0.5, 0, 0.5, 1])
  np.testing.assert_array_equal(tps['control_points'][0, :, 0, 1], [-1, -0.5, 0, 0.5, 1])
  assert abs(float(jnp.std(tps['theta'] - jnp.eye(2, 3))) - 0.05) < 0.03
  affine_only = equivariance.sample_tps(jax.random.PRNGKey(0), 2, 0.05)
  assert set(affine_only) == {'theta'}


@pytest.mark.parametrize('coord_batch', [3, 1])
def test_warp_coordinates_matches_official_formula(coord_batch):
  tps = _random_tps(seed=1, sigma_tps=0.05)  # a larger TPS part than the official, to see it
  coords = np.random.default_rng(0).uniform(-1.2, 1.2, (coord_batch, 40, 2)).astype(np.float32)
  ours = equivariance.warp_coordinates(tps, jnp.asarray(coords))
  expected = _numpy_warp(tps['theta'], tps['control_points'], tps['control_params'], coords)
  assert ours.shape == (3, 40, 2)
  np.testing.assert_allclose(ours, expected, atol=2e-6)


def test_warp_jacobian_matches_finite_differences():
  tps = _random_tps(seed=2, sigma_tps=0.05)
  coords = np.random.default_rng(1).uniform(-1, 1, (3, 15, 2)).astype(np.float32)
  ours = np.asarray(equivariance.warp_jacobian(tps, jnp.asarray(coords)))
  assert ours.shape == (3, 15, 2, 2)
  h = 1e-5
  expected = np.zeros((3, 15, 2, 2))
  for j in range(2):
    step = np.zeros(2)
    step[j] = h
    plus = _numpy_warp(tps['theta'], tps['control_points'], tps['control_params'], coords + step)
    minus = _numpy_warp(tps['theta'], tps['control_points'], tps['control_params'], coords - step)
    expected[..., j] = (plus - minus) / (2 * h)  # column j: d warp / d coord_j
  np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_affine_only_warp_and_jacobian():
  tps = equivariance.sample_tps(jax.random.PRNGKey(3), 2, 0.1)
  coords = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (2, 7, 2)), jnp.float32)
  warped = equivariance.warp_coordinates(tps, coords)
  theta = tps['theta']
  affine = jnp.einsum('bij,bnj->bni', theta[:, :, :2], coords) + theta[:, None, :, 2]
  np.testing.assert_allclose(warped, affine, atol=1e-6)
  np.testing.assert_allclose(equivariance.warp_jacobian(tps, coords),
                             jnp.broadcast_to(theta[:, None, :, :2], (2, 7, 2, 2)), atol=1e-6)


def _identity_tps(batch, points=5):
  return {'theta': jnp.broadcast_to(jnp.eye(2, 3), (batch, 2, 3)),
          'control_points': _random_tps(points=points)['control_points'],
          'control_params': jnp.zeros((batch, 1, points ** 2))}


def test_identity_transform_frame():
  """The identity transform returns the frame up to the official grid's half-pixel stretch.

  The official grid (x = 2i/(w-1) - 1) read by grid_sample with align_corners=False samples column
  i at i*w/(w-1) - 0.5, so only the border columns, the centre and linear ramps are reproduced
  exactly; any frame is reproduced to within half a pixel of interpolation.
  """
  rng = np.random.default_rng(3)
  b, h, w = 2, 9, 12
  ramp = (np.arange(w, dtype=np.float32)[None, :] * 0.5 + np.arange(h, dtype=np.float32)[:, None])
  frames = np.broadcast_to(ramp[None, :, :, None], (b, h, w, 3)).astype(np.float32)
  out = equivariance.transform_frame(_identity_tps(b), jnp.asarray(frames))
  # A linear ramp sampled at the stretched positions is the same ramp stretched.
  xs = np.clip(np.arange(w) * w / (w - 1) - 0.5, 0, w - 1)
  ys = np.clip(np.arange(h) * h / (h - 1) - 0.5, 0, h - 1)
  expected = xs[None, :] * 0.5 + ys[:, None]
  np.testing.assert_allclose(out[..., 0], np.broadcast_to(expected, (b, h, w)), atol=1e-5)

  smooth = jnp.asarray(rng.uniform(size=(b, 1, 1, 3)) + np.zeros((b, 64, 64, 3)), jnp.float32)
  np.testing.assert_allclose(equivariance.transform_frame(_identity_tps(b), smooth), smooth,
                             atol=1e-6)


def test_transform_frame_matches_torch_grid_sample():
  """transform_frame == official formula + torch F.grid_sample(reflection), for a random warp."""
  torch = pytest.importorskip('torch')
  tps = _random_tps(seed=4, batch=2, sigma_affine=0.2, sigma_tps=0.05)
  frames = np.random.default_rng(4).uniform(size=(2, 16, 20, 3)).astype(np.float32)
  ours = equivariance.transform_frame(tps, jnp.asarray(frames))
  xs = 2 * (np.arange(20, dtype=np.float32) / np.float32(19)) - 1
  ys = 2 * (np.arange(16, dtype=np.float32) / np.float32(15)) - 1
  grid = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), -1).reshape(1, -1, 2)
  warped = _numpy_warp(tps['theta'], tps['control_points'], tps['control_params'], grid)
  expected = torch.nn.functional.grid_sample(
      torch.from_numpy(frames).permute(0, 3, 1, 2),
      torch.from_numpy(warped.reshape(2, 16, 20, 2).astype(np.float32)),
      padding_mode='reflection', align_corners=False).permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_equivariance_losses_by_formula():
  tps = _random_tps(seed=5, batch=2, sigma_tps=0.05)
  rng = np.random.default_rng(5)
  kp_t = rng.uniform(-0.8, 0.8, (2, 15, 2)).astype(np.float32)
  jac_t = (np.eye(2) + rng.normal(0, 0.1, (2, 15, 2, 2))).astype(np.float32)
  jac_d = (np.eye(2) + rng.normal(0, 0.1, (2, 15, 2, 2))).astype(np.float32)
  kp_d = rng.uniform(-0.8, 0.8, (2, 15, 2)).astype(np.float32)
  warped = _numpy_warp(tps['theta'], tps['control_points'], tps['control_params'], kp_t)
  np.testing.assert_allclose(
      equivariance.equivariance_value_loss(kp_d, kp_t, tps, 10.0),
      10 * np.abs(kp_d - warped).mean(), rtol=1e-5)
  j_warp = np.asarray(equivariance.warp_jacobian(tps, jnp.asarray(kp_t)), np.float64)
  value = np.linalg.inv(jac_d.astype(np.float64)) @ (j_warp @ jac_t)
  np.testing.assert_allclose(
      equivariance.equivariance_jacobian_loss(jac_d, kp_t, jac_t, tps, 10.0),
      10 * np.abs(np.eye(2) - value).mean(), rtol=1e-5)
  # A keypoint detector that is exactly equivariant has zero loss.
  kp_exact = equivariance.warp_coordinates(tps, jnp.asarray(kp_t))
  assert float(equivariance.equivariance_value_loss(kp_exact, kp_t, tps)) < 1e-7


def test_equivariance_loss_gradients_are_finite():
  tps = _random_tps(seed=6, batch=2)
  kp = jnp.asarray(np.random.default_rng(6).uniform(-1, 1, (2, 15, 2)), jnp.float32)
  jac = jnp.broadcast_to(jnp.eye(2), (2, 15, 2, 2)) * 1.1
  grads = jax.grad(lambda k, j: equivariance.equivariance_jacobian_loss(jac, k, j, tps) +
                   equivariance.equivariance_value_loss(kp, k, tps), argnums=(0, 1))(kp, jac)
  assert all(bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0 for g in grads)


# ----------------------------------------------------------------------------- GAN losses


def test_lsgan_losses_by_formula():
  rng = np.random.default_rng(7)
  real, fake = rng.normal(size=(2, 2, 3, 3, 1)).astype(np.float32)
  np.testing.assert_allclose(losses.lsgan_generator_loss(fake, 2.0),
                             2 * np.mean((1 - fake) ** 2), rtol=1e-6)
  np.testing.assert_allclose(losses.lsgan_discriminator_loss(real, fake, 0.5),
                             0.5 * np.mean((1 - real) ** 2 + fake ** 2), rtol=1e-6)


def test_feature_matching_by_formula():
  rng = np.random.default_rng(8)
  shapes = [(2, 8, 8, 4), (2, 4, 4, 8), (2, 2, 2, 8), (2, 1, 1, 8)]
  real = [rng.normal(size=s).astype(np.float32) for s in shapes]
  fake = [rng.normal(size=s).astype(np.float32) for s in shapes]
  weights = [10, 0, 2.5, 1]
  expected = sum(w * np.abs(r - f).mean() for w, r, f in zip(weights, real, fake))
  np.testing.assert_allclose(losses.feature_matching_loss(real, fake, weights), expected,
                             rtol=1e-6)
  with pytest.raises(ValueError, match='weights'):
    losses.feature_matching_loss(real, fake, weights[:3])


def test_ensemble_patch_map_is_the_official_weighting():
  rng = np.random.default_rng(9)
  maps = [{'prediction_map_1': rng.normal(size=(2, 3, 3, 1)).astype(np.float32)}
          for _ in range(3)]
  got = objective.ensemble_map(*maps, w_depth=0.25, w_normal=0.25)
  d1, d2, d3 = (m['prediction_map_1'] for m in maps)
  np.testing.assert_allclose(got, (d1 + d2 * 0.25 + d3 * 0.25) / 1.5, rtol=1e-6)


# ----------------------------------------------------------------------------- perceptual


def test_image_pyramid_shapes():
  x = jnp.asarray(np.random.default_rng(10).uniform(size=(1, 64, 64, 3)), jnp.float32)
  pyramid = losses.image_pyramid(x)
  assert {s: p.shape for s, p in pyramid.items()} == {
      1: (1, 64, 64, 3), 0.5: (1, 32, 32, 3), 0.25: (1, 16, 16, 3), 0.125: (1, 8, 8, 3)}
  assert pyramid[1] is x


def test_perceptual_loss_by_formula_and_stop_gradient():
  rng = np.random.default_rng(11)
  gen = jnp.asarray(rng.uniform(size=(2, 32, 32, 3)), jnp.float32)
  real = jnp.asarray(rng.uniform(size=(2, 32, 32, 3)), jnp.float32)

  def features(x):
    return [x, x ** 2, jnp.tanh(x)]

  weights = (1.0, 2.0, 0.5)
  expected = 0.0
  for scale in losses.PYRAMID_SCALES:
    g = np.asarray(antialias_downsample(gen, scale))
    r = np.asarray(antialias_downsample(real, scale))
    for w, fg, fr in zip(weights, features(g), features(r)):
      expected += w * np.abs(np.asarray(fg) - np.asarray(fr)).mean()
  got = losses.perceptual_loss(features, gen, real, weights)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  grad_real = jax.grad(lambda r: losses.perceptual_loss(features, gen, r, weights))(real)
  assert float(jnp.abs(grad_real).max()) == 0.0


def test_perceptual_loss_with_vgg19():
  from g3fa_jax.models.vgg19 import Vgg19  # pylint: disable=g-import-not-at-top
  x = jnp.zeros((1, 32, 32, 3))
  variables = Vgg19().init(jax.random.PRNGKey(0), x)
  rng = np.random.default_rng(12)
  gen = jnp.asarray(rng.uniform(size=(1, 32, 32, 3)), jnp.float32)
  vgg = functools.partial(Vgg19().apply, variables)
  value = losses.perceptual_loss(vgg, gen, gen, (10.,) * 5, scales=(1, 0.5))
  assert float(value) == 0.0
  other = jnp.asarray(rng.uniform(size=(1, 32, 32, 3)), jnp.float32)
  assert float(losses.perceptual_loss(vgg, gen, other, (10.,) * 5, scales=(1, 0.5))) > 0


# ----------------------------------------------------------------------------- objective


def test_objective_leaves_out_zero_weighted_losses():
  rng = np.random.default_rng(13)

  def disc():
    return {'prediction_map_1': jnp.asarray(rng.normal(size=(2, 2, 2, 1)), jnp.float32),
            'feature_maps_1': [jnp.asarray(rng.normal(size=(2, 4, 4, 2)), jnp.float32)] * 4}

  kp = {'value': jnp.zeros((2, 15, 2)), 'jacobian': jnp.broadcast_to(jnp.eye(2), (2, 15, 2, 2))}
  tps = _random_tps(batch=2)
  common = dict(rgb_real=disc(), rgb_generated=disc(), depth_generated=disc(),
                normal_generated=disc(), kp_driving=kp, transformed_kp=kp, tps=tps)
  weights = dict(objective.OFFICIAL_LOSS_WEIGHTS, perceptual=(0,) * 5)
  assert set(objective.generator_losses(weights, **common)) == {
      'gen_gan', 'feature_matching', 'equivariance_value', 'equivariance_jacobian'}
  weights.update(generator_gan=0, equivariance_jacobian=0)
  assert set(objective.generator_losses(weights, **common)) == {'equivariance_value'}
  with pytest.raises(ValueError, match='perceptual'):
    objective.generator_losses(objective.OFFICIAL_LOSS_WEIGHTS, **common)
  d = objective.discriminator_losses(
      weights, rgb_real=disc(), rgb_generated=disc(), depth_real=disc(), depth_generated=disc(),
      normal_real=disc(), normal_generated=disc())
  assert set(d) == {'disc_gan'} and d['disc_gan'].shape == ()


# ----------------------------------------------------------------------------- official parity


def _fixture_run_config(settings) -> ml_collections.ConfigDict:
  from g3fa_jax import model_config  # pylint: disable=g-import-not-at-top
  config = model_config.default_config()
  config.model = model_config.model_config_from_official(settings['model_params'])
  for key in ('nf', 'zdim', 'image_size', 'min_depth', 'max_depth', 'border_depth', 'fov'):
    config.unsup3d[key] = settings['unsup3d'][key]
  config.image_size = settings['image_size']
  return config


def test_training_losses_match_official(official_fixture, fixture_settings):
  """One official training step's losses, from the fixture's weights, inputs and TPS draw."""
  from g3fa_jax.convert import official  # pylint: disable=g-import-not-at-top
  from g3fa_jax.convert import unsup3d as unsup3d_convert  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models import inverse_renderer  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models import networks  # pylint: disable=g-import-not-at-top
  from g3fa_jax.ops.antialias import kernel_from_buffer  # pylint: disable=g-import-not-at-top

  npz = official_fixture
  config = _fixture_run_config(fixture_settings)
  names = networks.G3FA_NETWORKS
  variables = official.official_to_variables(
      {name: fixture_state_dict(npz, name) for name in names}, config, source='fixture',
      names=names)
  unsup3d_variables = unsup3d_convert.unsup3d_to_variables(
      fixture_state_dict(npz, 'unsup3d'), config, source='fixture [unsup3d]')
  nets = {name: networks.build_network(name, config) for name in names + ('unsup3d',)}
  # The fixture's anti-alias buffers are rounded to bfloat16 and its outputs were computed with
  # them (see test_parity_generator.py): downsample with the stored kernel.
  kernel = kernel_from_buffer(npz['param/kp_detector/down.weight'])
  nets['kp_detector'] = networks.build_kp_detector(config.model, antialias_kernel=kernel)
  nets['generator'] = networks.build_generator(config.model, antialias_kernel=kernel)

  source = jnp.asarray(nchw_to_nhwc(npz['in/source']))
  driving = jnp.asarray(nchw_to_nhwc(npz['in/driving']))
  tps = {key: jnp.asarray(npz[f'in/transform/{key}'])
         for key in ('theta', 'control_points', 'control_params')}
  np.testing.assert_array_equal(  # The official control points are the 5x5 coordinate grid.
      tps['control_points'], equivariance.sample_tps(jax.random.PRNGKey(0), 2, 0.05, 0.005,
                                                     5)['control_points'])
  ensemble = dict(w_depth=fixture_settings['w_depth'], w_normal=fixture_settings['w_normal'])
  loss_weights = fixture_settings['loss_weights']

  @jax.jit
  def official_step(variables, unsup3d_variables, source, driving, tps):
    def kp_train(images):  # BatchNorm on this call's batch statistics, as torch's train mode.
      out, _ = nets['kp_detector'].apply(variables['kp_detector'], images, train=True,
                                         mutable=['batch_stats'])
      return out

    def disc_eval(name, x):  # Spectral norm with the stored u, v (no power iteration).
      return nets[name].apply(variables[name], x, train=False)

    def depth_and_normal(images):
      return inverse_renderer.unsup3d_depth_and_normal(
          nets['unsup3d'].apply, unsup3d_variables, images, config.unsup3d)

    kp_source = kp_train(source)
    kp_driving = kp_train(driving)
    generated, _ = nets['generator'].apply(variables['generator'], source, kp_source, kp_driving,
                                           train=True, mutable=['batch_stats'])
    prediction = generated['prediction']
    depth_real, normal_real = depth_and_normal(driving)
    depth_fake, normal_fake = depth_and_normal(jax.lax.stop_gradient(prediction))
    rgb_real = disc_eval('discriminator', driving)
    rgb_fake = disc_eval('discriminator', prediction)
    depth_disc_fake = disc_eval('discriminator2', depth_fake)
    normal_disc_fake = disc_eval('discriminator3', normal_fake)
    transformed_kp = kp_train(equivariance.transform_frame(tps, driving))

    gen = objective.generator_losses(
        loss_weights, rgb_real=rgb_real, rgb_generated=rgb_fake, depth_generated=depth_disc_fake,
        normal_generated=normal_disc_fake, kp_driving=kp_driving, transformed_kp=transformed_kp,
        tps=tps, **ensemble)
    disc = objective.discriminator_losses(
        loss_weights, rgb_real=rgb_real, rgb_generated=rgb_fake,
        depth_real=disc_eval('discriminator2', depth_real), depth_generated=depth_disc_fake,
        normal_real=disc_eval('discriminator3', normal_real), normal_generated=normal_disc_fake,
        **ensemble)
    return prediction, {**gen, **disc}

  prediction, got = official_step(variables, unsup3d_variables, source, driving, tps)
  np.testing.assert_allclose(prediction, nchw_to_nhwc(npz['out/train/generator/prediction']),
                             rtol=1e-4)
  assert set(got) == {'gen_gan', 'feature_matching', 'equivariance_value',
                      'equivariance_jacobian', 'disc_gan'}
  for key, value in got.items():
    np.testing.assert_allclose(value, npz[f'out/train/loss/{key}'], rtol=1e-4, err_msg=key)
