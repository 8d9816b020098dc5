"""The g3fa-jax options of the synthetic recipe (narrow generator, truncated VGG19, pixel L1) and
the main job's measurements (keypoint-pose correlation, learning curve, contact sheet)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from g3fa_jax import losses
from g3fa_jax import model_config
from g3fa_jax.demo import figures
from g3fa_jax.demo import job
from g3fa_jax.models import networks
from g3fa_jax.models.vgg19 import Vgg19
from g3fa_jax.train import step as step_lib
from g3fa_jax.train import trainer

ROOT = __import__('pathlib').Path(__file__).resolve().parents[1]


def _synthetic_config():
  return model_config.load_config(str(ROOT / 'configs' / 'synthetic.py'))


def _moved_keypoints_and_source(batch: int, shift: float):
  """Random source keypoints (identity jacobians), the driving ones `shift` away, a 64x64 source."""
  kp_source = {'value': jax.random.uniform(jax.random.PRNGKey(1), (batch, 15, 2), minval=-.5,
                                           maxval=.5),
               'jacobian': jnp.broadcast_to(jnp.eye(2), (batch, 15, 2, 2))}
  kp_driving = dict(kp_source, value=kp_source['value'] + shift)
  source = jax.random.uniform(jax.random.PRNGKey(2), (batch, 64, 64, 3))
  return kp_source, kp_driving, source


def test_truncated_vgg19_is_a_prefix_of_the_full_network():
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3))
  variables = Vgg19().init(jax.random.PRNGKey(1), x)
  full = Vgg19().apply(variables, x)
  for n in (1, 3):
    # The full network's variables restore into the truncated one (extra convs unused).
    part = Vgg19(num_outputs=n).apply(variables, x)
    assert len(part) == n
    for a, b in zip(part, full):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(ValueError, match='num_outputs=6'):
    Vgg19(num_outputs=6).apply(variables, x)


def test_feature_maps_needed_and_perceptual_loss_on_fewer_maps():
  assert losses.feature_maps_needed([10, 10, 10, 0, 0]) == 3
  assert losses.feature_maps_needed([10, 0, 10, 0, 0]) == 3
  assert losses.feature_maps_needed([0, 0, 0, 0, 0]) == 0
  assert losses.feature_maps_needed([10] * 5) == 5
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3))
  y = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 32, 3))
  variables = Vgg19().init(jax.random.PRNGKey(1), x)
  weights = (10., 10., 10., 0., 0.)
  full = losses.perceptual_loss(functools.partial(Vgg19().apply, variables), x, y, weights,
                                scales=(1, 0.5))
  short = losses.perceptual_loss(functools.partial(Vgg19(num_outputs=3).apply, variables), x, y,
                                 weights, scales=(1, 0.5))
  np.testing.assert_allclose(float(short), float(full), rtol=1e-6)
  with pytest.raises(ValueError, match='feature maps'):
    losses.perceptual_loss(functools.partial(Vgg19(num_outputs=2).apply, variables), x, y,
                           weights, scales=(1,))


def test_step_builds_vgg19_to_the_deepest_weighted_map():
  config = _synthetic_config()
  assert step_lib.Networks.from_config(config).vgg19.num_outputs == 3
  config.train.loss_weights.perceptual = [10.] * 5
  assert step_lib.Networks.from_config(config).vgg19.num_outputs == 5


def test_pyramid_check_follows_the_maps_used():
  config = _synthetic_config()
  config.train.scales = [1.0, 0.125]  # 8x8: enough for relu3_1 (needs 4x4), not for relu5_1.
  trainer.validate_config(config)
  config.train.loss_weights.perceptual = [10.] * 5
  with pytest.raises(ValueError, match=r'relu5_1 needs 16x16'):
    trainer.validate_config(config)


def test_pixel_l1_is_its_weight_times_the_mean_absolute_error():
  prediction = jnp.full((1, 4, 4, 3), 0.25)
  driving = jnp.zeros((1, 4, 4, 3)).at[:, :2].set(1.)
  weights = dict(losses.OFFICIAL_LOSS_WEIGHTS, generator_gan=0., perceptual=(0.,) * 5,
                 equivariance_value=0., equivariance_jacobian=0.)
  assert losses.generator_losses(weights, driving=driving, prediction=prediction) == {}
  weights['pixel_l1'] = 100.
  got = losses.generator_losses(weights, driving=driving, prediction=prediction)
  expected = 100. * (0.5 * 0.75 + 0.5 * 0.25)
  assert float(got['pixel_l1']) == pytest.approx(expected)


def test_warped_l1_is_its_weight_times_the_warped_sources_error():
  deformed = jnp.full((1, 4, 4, 3), 0.25)
  driving = jnp.zeros((1, 4, 4, 3)).at[:, :2].set(1.)
  weights = dict(losses.OFFICIAL_LOSS_WEIGHTS, generator_gan=0., perceptual=(0.,) * 5,
                 equivariance_value=0., equivariance_jacobian=0., warped_l1=10.)
  got = losses.generator_losses(weights, driving=driving, prediction=driving, deformed=deformed)
  assert set(got) == {'warped_l1'}
  assert float(got['warped_l1']) == pytest.approx(10. * (0.5 * 0.75 + 0.5 * 0.25))
  with pytest.raises(ValueError, match='warped_l1'):
    losses.generator_losses(weights, driving=driving, prediction=driving)


def test_zero_motion_keeps_the_source_with_warp_align_corners():
  """Source and driving keypoints equal and the mask all on the identity motion: with
  warp_align_corners the warped source is the source, at any feature resolution."""
  from g3fa_jax.models.generator import deform_input  # pylint: disable=g-import-not-at-top
  from g3fa_jax.ops.grid import make_coordinate_grid  # pylint: disable=g-import-not-at-top
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 5))
  identity = jnp.broadcast_to(make_coordinate_grid((8, 8))[None], (2, 8, 8, 2))
  np.testing.assert_allclose(np.asarray(deform_input(x, identity, align_corners=True)),
                             np.asarray(x), atol=1e-5)
  assert float(jnp.abs(deform_input(x, identity) - x).mean()) > 0.05


def test_decoder_upsamples_by_two_to_the_down_blocks():
  """num_down_blocks = 1: features at half size, one decoder upsampling, same parameter tree."""
  config = _synthetic_config()
  kp = {'value': jnp.zeros((1, 15, 2)), 'jacobian': jnp.broadcast_to(jnp.eye(2), (1, 15, 2, 2))}
  trees = {}
  for down in (1, 2):
    config.model.generator_params.num_down_blocks = down
    config.model.generator_params.block_expansion = 64 // 2 ** down
    generator = networks.build_generator(config.model)
    source = jnp.ones((1, 64, 64, 3)) * 0.5
    variables = generator.init(jax.random.PRNGKey(0), source, kp, kp, train=False)
    out = generator.apply(variables, source, kp, kp, train=False)
    assert out['prediction'].shape == (1, 64, 64, 3)
    trees[down] = set(variables['params']['decoder'])
  assert trees[1] == trees[2]


def test_blend_warped_source_mixes_the_warp_and_the_decoder_by_its_mask():
  """blend_mask -> 1 gives the warped source, -> 0 the plain decoder's frame (same weights)."""
  config = _synthetic_config()
  config.model.generator_params.blend_warped_source = True
  kp_source, kp_driving, source = _moved_keypoints_and_source(1, 0.1)
  blended = networks.build_generator(config.model)
  variables = blended.init(jax.random.PRNGKey(0), source, kp_source, kp_driving, train=False)
  config.model.generator_params.blend_warped_source = False
  plain = networks.build_generator(config.model)
  plain_params = jax.tree_util.tree_map(lambda x: x, variables['params'])
  del plain_params['decoder']['blend_mask']
  decoded = plain.apply({**variables, 'params': plain_params}, source, kp_source, kp_driving,
                        train=False)['prediction']
  for bias, want in ((50., 'deformed'), (-50., 'decoded')):
    params = jax.tree_util.tree_map(lambda x: x, variables['params'])
    params['decoder']['blend_mask']['bias'] = jnp.full_like(
        params['decoder']['blend_mask']['bias'], bias)
    out = blended.apply({**variables, 'params': params}, source, kp_source, kp_driving,
                        train=False)
    assert out['blend_mask'].shape == (1, 64, 64, 1)
    expected = out['deformed'] if want == 'deformed' else decoded
    np.testing.assert_allclose(np.asarray(out['prediction']), np.asarray(expected), atol=1e-5)
  assert float(jnp.abs(decoded - out['deformed']).mean()) > 0.01


def test_narrow_generator_runs_and_a_width_mismatch_is_named():
  config = _synthetic_config()
  gp = config.model.generator_params
  assert (gp.block_expansion, gp.max_features, gp.decoder_hidden_channels,
          gp.render_params.output_channels) == (16, 64, 32, 64)
  variables = networks.init_variables('generator', config, jax.random.PRNGKey(0))
  decoder = variables['params']['decoder']
  # SPADE hidden width 32 and the stacked (64 + 64)-channel input.
  assert decoder['seg_conv_0']['kernel'].shape[-2:] == (128, 32)
  gp.render_params.output_channels = 32
  with pytest.raises(ValueError, match='render_params.output_channels'):
    networks.init_variables('generator', config, jax.random.PRNGKey(0))


class _PoseKeypoints:
  """A stand-in animator whose keypoints move by yaw / 100 in x (and stay still in y)."""

  def __init__(self, record_angles):
    self.angles = record_angles

  def keypoints(self, frames):
    yaw = np.asarray(self.angles.pop(0))
    value = np.zeros((len(frames), 15, 2), np.float32)
    value[..., 0] = -yaw[:, None] / 100.
    return {'value': value}


def test_keypoint_pose_correlation(tmp_path):
  config = _synthetic_config()
  config.synthetic.update(videos=6, frames=6, workers=0)
  config.image_size = 32
  config = job.resolve_paths(config, tmp_path)
  job.prepare_data(config)
  clips = job._split_source(config, 'test')  # pylint: disable=protected-access
  yaws = [clips[i]['synthetic']['yaw'] for i in range(len(clips))]
  result = job.keypoint_pose_correlation(_PoseKeypoints(list(yaws)), config)
  assert result['yaw_x'] == pytest.approx(-1.0, abs=1e-6)
  assert result['pitch_y'] == 0.0  # Keypoints that do not move.


def test_learning_curve_png(tmp_path):
  path = tmp_path / 'curve.png'
  figures.learning_curve([0, 100, 200], [0.2, 0.05, 0.02], 0.03, path)
  image = np.asarray(Image.open(path).convert('RGB'))
  assert image.shape == (400, 640, 3)
  # The baseline is drawn in red, the curve in blue.
  assert ((image == (214, 39, 40)).all(axis=-1)).sum() > 100
  assert ((image == (31, 119, 180)).all(axis=-1)).sum() > 100
  with pytest.raises(ValueError):
    figures.learning_curve([0, 1], [0.1], 0.03, path)


def test_contact_sheet_layout(tmp_path):
  source = np.zeros((8, 8, 3), np.float32)
  driving = np.linspace(0, 1, 10)[:, None, None, None] * np.ones((10, 8, 8, 3), np.float32)
  generated = 1 - driving
  shown = figures.contact_sheet(source, driving, generated, tmp_path / 's.png', columns=4,
                                scale=1)
  assert shown == [0, 3, 6, 9]
  sheet = np.asarray(Image.open(tmp_path / 's.png')).astype(np.float32) / 255
  assert sheet.shape == (2 * 8 + 4, 5 * 8 + 4 * 4, 3)
  # Row 1: the source, then driving frames 0, 3, 6, 9; row 2: generated frames under them.
  np.testing.assert_allclose(sheet[:8, :8], 0)
  np.testing.assert_allclose(sheet[:8, 12:20], driving[0], atol=1 / 255)
  np.testing.assert_allclose(sheet[12:20, 48:56], generated[9], atol=1 / 255)
  # Extra rows go under the generated one, blank on the left.
  reference = np.full_like(driving, 0.25)
  figures.contact_sheet(source, driving, generated, tmp_path / 'e.png', columns=4, scale=1,
                        extra_rows=[reference])
  sheet = np.asarray(Image.open(tmp_path / 'e.png')).astype(np.float32) / 255
  assert sheet.shape == (3 * 8 + 2 * 4, 5 * 8 + 4 * 4, 3)
  np.testing.assert_allclose(sheet[24:32, :8], 1)
  np.testing.assert_allclose(sheet[24:32, 12:20], 0.25, atol=1 / 255)
  np.testing.assert_allclose(sheet[12:20, 48:56], generated[9], atol=1 / 255)
  with pytest.raises(ValueError, match='extra'):
    figures.contact_sheet(source, driving, generated, tmp_path / 'x.png',
                          extra_rows=[reference[:3]])


def test_zero_motion_offset_withholds_the_zero_motion_channel():
  """Generator(..., zero_motion_logit_offset=-20): no mask weight on zero motion; 0 or None: the
  official network's output exactly."""
  config = _synthetic_config()
  kp_source, kp_driving, source = _moved_keypoints_and_source(2, 0.05)
  generator = networks.build_generator(config.model)
  variables = generator.init(jax.random.PRNGKey(0), source, kp_source, kp_driving, train=False)
  run = lambda offset: generator.apply(variables, source, kp_source, kp_driving, train=False,
                                       zero_motion_logit_offset=offset)
  official, zero, held = run(None), run(0.), run(step_lib.ZERO_MOTION_HELD_LOGIT)
  assert float(official['mask'][..., 0].mean()) > 0.01
  np.testing.assert_array_equal(np.asarray(zero['prediction']), np.asarray(official['prediction']))
  assert float(held['mask'][..., 0].max()) < 1e-6
  np.testing.assert_allclose(np.asarray(held['mask'].sum(-1)), 1., atol=1e-5)
  assert float(jnp.abs(held['deformation'] - official['deformation']).max()) > 1e-3


def test_mask_blur_keeps_weights_that_sum_to_one_and_smooths_the_seams():
  """dense_motion_params.mask_blur_sigma: the same variables; the mask still sums to 1 at every
  cell, it differs less between neighbouring cells, and it is the blur of the unblurred mask."""
  from g3fa_jax.ops.highpass import gaussian_blur  # pylint: disable=g-import-not-at-top
  config = _synthetic_config()
  kp_source, kp_driving, source = _moved_keypoints_and_source(2, 0.05)
  variables, masks = None, {}
  for sigma in (0.0, 1.0):
    config.model.generator_params.dense_motion_params.mask_blur_sigma = sigma
    generator = networks.build_generator(config.model)
    if variables is None:
      variables = generator.init(jax.random.PRNGKey(0), source, kp_source, kp_driving, train=False)
    masks[sigma] = generator.apply(variables, source, kp_source, kp_driving, train=False)['mask']
  np.testing.assert_allclose(np.asarray(masks[1.0].sum(-1)), 1., atol=1e-5)
  np.testing.assert_allclose(np.asarray(masks[1.0]), np.asarray(gaussian_blur(masks[0.0], 1.0)),
                             atol=1e-6)
  seam = lambda m: float(jnp.abs(jnp.diff(m, axis=1)).mean() + jnp.abs(jnp.diff(m, axis=2)).mean())
  assert seam(masks[1.0]) < 0.7 * seam(masks[0.0]), (seam(masks[1.0]), seam(masks[0.0]))
  # The motion warm-up trains the unblurred mask (a blurred one never left zero motion there).
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  assert motion_warmup.build_dense_motion(config).mask_blur_sigma == 0.0


def test_zero_motion_warmup_schedule():
  assert step_lib.zero_motion_logit_offset(jnp.int32(5), 0) is None
  assert float(step_lib.zero_motion_logit_offset(jnp.int32(0), 3)) == step_lib.ZERO_MOTION_HELD_LOGIT
  assert float(step_lib.zero_motion_logit_offset(jnp.int32(2), 3)) == step_lib.ZERO_MOTION_HELD_LOGIT
  assert float(step_lib.zero_motion_logit_offset(jnp.int32(3), 3)) == 0.
  settings = step_lib.StepSettings.from_config(_synthetic_config())
  assert settings.zero_motion_warmup_steps == _synthetic_config().train.zero_motion_warmup_steps


def _generator_phase_inputs(config):
  """(nets, settings, fresh train state, a random 2-pair 64x64 batch, rng) for generator_phase."""
  from g3fa_jax.train import optim  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
  nets = step_lib.Networks.from_config(config)
  settings = step_lib.StepSettings.from_config(config)
  state = state_lib.init_train_state(config, optim.make_optimizers(config, steps_per_epoch=10),
                                     jax.random.PRNGKey(0))
  rng = jax.random.PRNGKey(1)
  batch = {'source': jax.random.uniform(rng, (2, 64, 64, 3)),
           'driving': jax.random.uniform(jax.random.PRNGKey(2), (2, 64, 64, 3))}
  return nets, settings, state, batch, rng


def test_train_step_holds_the_zero_motion_channel_during_the_warmup():
  """The generator phase passes the schedule to the dense motion: at step 0 of a 5-step warm-up
  the mask has no weight on zero motion, after it the channel is back."""
  config = _synthetic_config()
  config.train.zero_motion_warmup_steps = 5
  weights = config.train.loss_weights  # the cheapest phase: no GAN, VGG19 or equivariance
  weights.generator_gan = 0.
  weights.perceptual = [0.] * len(weights.perceptual)
  weights.equivariance_value = weights.equivariance_jacobian = 0.
  nets, settings, state, batch, rng = _generator_phase_inputs(config)
  phase = jax.jit(lambda s: step_lib.generator_phase(nets, settings, s, batch, {}, rng)[1][
      'generated']['mask'][..., 0].max())
  assert float(phase(state)) < 1e-6
  assert float(phase(state.replace(step=jnp.int32(5)))) > 1e-3


def test_motion_warmup_trains_and_drops_into_a_train_state():
  """MotionTrainer: two steps change the keypoint detector and the dense motion; into_state puts
  exactly those variables into a fresh G3FA state, with every shape and the rest unchanged."""
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import optim  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
  config = _synthetic_config()
  motion = motion_warmup.MotionTrainer(config, zero_motion_warmup=1)
  before = motion.variables()
  frames = jax.random.uniform(jax.random.PRNGKey(3), (4, 64, 64, 3))
  for i in range(2):
    l1 = motion.step(np.asarray(frames[:2]), np.asarray(frames[2:]), i)
    assert np.isfinite(float(l1))
  after = motion.variables()
  changed = jax.tree_util.tree_map(lambda a, b: bool(np.any(a != b)), before, after)
  assert any(jax.tree_util.tree_leaves(changed['kp_detector']['params']))
  assert any(jax.tree_util.tree_leaves(changed['dense_motion_network']['params']))
  state = state_lib.init_train_state(config, optim.make_optimizers(config, steps_per_epoch=10),
                                     jax.random.PRNGKey(0))
  merged = motion_warmup.into_state(state, after)
  shapes = lambda tree: jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), tree)
  assert shapes(merged) == shapes(state)
  np.testing.assert_array_equal(
      np.asarray(jax.tree_util.tree_leaves(merged.params['kp_detector'])[0]),
      np.asarray(jax.tree_util.tree_leaves(after['kp_detector']['params'])[0]))
  for a, b in zip(jax.tree_util.tree_leaves(merged.params['generator']['dense_motion_network']),
                  jax.tree_util.tree_leaves(after['dense_motion_network']['params'])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for a, b in zip(jax.tree_util.tree_leaves(merged.params['generator']['decoder']),
                  jax.tree_util.tree_leaves(state.params['generator']['decoder'])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_motion_warmup_pulls_the_keypoints_onto_the_landmarks():
  """MotionTrainer(landmarks=w): keypoint k is pulled to landmark k (the first min(K, L)), so a
  few steps on the landmark L1 alone bring the keypoints nearer; without landmarks it refuses."""
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  from g3fa_jax.losses import landmark_anchor  # pylint: disable=g-import-not-at-top
  config = _synthetic_config()
  motion = motion_warmup.MotionTrainer(config, equivariance=0., landmarks=100.)
  frames = np.asarray(jax.random.uniform(jax.random.PRNGKey(3), (4, 64, 64, 3)))
  num_kp = config.model.common_params.num_kp
  targets = np.asarray(jax.random.uniform(jax.random.PRNGKey(4), (2, num_kp + 2, 2),
                                          minval=-0.6, maxval=0.6))
  distance = lambda: float(landmark_anchor.landmark_l1(
      jnp.asarray(motion.keypoints(frames[:2])), jnp.asarray(targets)))
  before = distance()
  for i in range(20):
    motion.step(frames[:2], frames[:2], i, landmarks=(targets, targets))
  assert distance() < 0.6 * before
  with pytest.raises(ValueError, match='landmarks'):
    motion.step(frames[:2], frames[2:], 20)


def test_motion_warmup_mask_teacher_moves_the_mask_to_the_nearest_motion():
  """MotionTrainer(mask_teacher=w): with the true motion equal to zero motion everywhere the
  nearest candidate is channel 0 in every cell, so steps on the teacher alone raise the mask's
  weight on zero motion; without a true motion it refuses."""
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  from g3fa_jax.synthetic import flow  # pylint: disable=g-import-not-at-top
  config = _synthetic_config()
  motion = motion_warmup.MotionTrainer(config, equivariance=0., mask_teacher=1.)
  assert motion.needs_truth
  frames = np.asarray(jax.random.uniform(jax.random.PRNGKey(3), (4, 64, 64, 3)))
  g = motion.motion_size
  still = np.broadcast_to(flow.grid_coordinates(g)[None], (2, g, g, 2)).astype(np.float32)
  before = motion.zero_motion_weight(frames[:2], frames[2:], 0)
  for i in range(10):
    motion.step(frames[:2], frames[2:], i, truth=still)
  assert motion.zero_motion_weight(frames[:2], frames[2:], 10) > before + 0.05
  with pytest.raises(ValueError, match='no true motion'):
    motion.step(frames[:2], frames[2:], 10)


def test_landmark_loss_trains_the_keypoints_without_the_generator():
  """With loss_weights.landmarks alone the generator phase reports that term (the mean L1 of the
  keypoints of both frames to the batch's landmarks, weighted), its gradient reaches the keypoint
  detector and no generator weight; without landmarks in the batch it says what is missing."""
  from g3fa_jax.losses import objective  # pylint: disable=g-import-not-at-top
  config = _synthetic_config()
  weights = config.train.loss_weights
  weights.generator_gan = weights.pixel_l1 = weights.warped_l1 = 0.
  weights.perceptual = [0.] * len(weights.perceptual)
  weights.equivariance_value = weights.equivariance_jacobian = 0.
  weights.local_motion = weights.keypoint_separation = 0.
  weights.landmarks = 7.
  nets, settings, state, batch, rng = _generator_phase_inputs(config)
  marks = jax.random.uniform(jax.random.PRNGKey(5), (2, 2, 15, 2), minval=-0.5, maxval=0.5)
  batch = dict(batch, source_landmarks=marks[0], driving_landmarks=marks[1])
  phase = lambda s: step_lib.generator_phase(nets, settings, s, batch, {}, rng)
  grads, aux = jax.jit(phase)(state)
  assert set(aux['losses']) == {'landmarks'}
  expected = 7. * 0.5 * (jnp.mean(jnp.abs(aux['kp_source']['value'] - marks[0]))
                         + jnp.mean(jnp.abs(aux['kp_driving']['value'] - marks[1])))
  assert float(aux['losses']['landmarks']) == pytest.approx(float(expected), rel=1e-5)
  norm = lambda tree: sum(float(jnp.sum(jnp.abs(x))) for x in jax.tree_util.tree_leaves(tree))
  assert norm(grads['kp_detector']) > 0
  assert norm(grads['generator']) == 0
  with pytest.raises(ValueError, match='landmarks'):
    objective.generator_losses(dict(weights.to_dict(), landmarks=1.),
                               kp_source=aux['kp_source'], kp_driving=aux['kp_driving'])


def test_local_motion_trains_the_keypoints_without_the_generator():
  """With loss_weights.local_motion alone the generator phase reports that term, and its gradient
  reaches the keypoint detector but no generator weight (it bypasses the dense motion's mask)."""
  from g3fa_jax.losses.keypoint_separation import keypoint_separation  # pylint: disable=g-import-not-at-top
  from g3fa_jax.losses.local_motion import local_motion_l1  # pylint: disable=g-import-not-at-top
  config = _synthetic_config()
  weights = config.train.loss_weights
  weights.generator_gan = weights.pixel_l1 = weights.warped_l1 = 0.
  weights.perceptual = [0.] * len(weights.perceptual)
  weights.equivariance_value = weights.equivariance_jacobian = 0.
  weights.local_motion = 10.
  config.train.local_motion_highpass = 1.0
  weights.keypoint_separation = 2.
  config.train.keypoint_separation_sigma = 0.3
  nets, settings, state, batch, rng = _generator_phase_inputs(config)
  assert settings.local_motion.highpass_sigma == 1.0
  grads, aux = jax.jit(lambda s: step_lib.generator_phase(nets, settings, s, batch, {}, rng))(state)
  assert set(aux['losses']) == {'local_motion', 'keypoint_separation'}
  expected_separation = (keypoint_separation(aux['kp_source']['value'], 0.3)
                         + keypoint_separation(aux['kp_driving']['value'], 0.3))
  assert float(aux['losses']['keypoint_separation']) == pytest.approx(
      float(expected_separation), rel=1e-5)
  expected = 10. * local_motion_l1(batch['source'], batch['driving'], aux['kp_source'],
                                   aux['kp_driving'], **settings.local_motion.kwargs())
  assert float(aux['losses']['local_motion']) == pytest.approx(float(expected), rel=1e-5)
  norm = lambda tree: sum(float(jnp.sum(jnp.abs(x))) for x in jax.tree_util.tree_leaves(tree))
  assert norm(grads['kp_detector']) > 0
  assert norm(grads['generator']) == 0
