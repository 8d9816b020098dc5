"""Training step pieces: geometry gradient modes, schedule, pretrained inputs, input, configs."""

from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from g3fa_jax import model_config
from g3fa_jax.data import toy
from g3fa_jax.train import checkpointing
from g3fa_jax.train import optim
from g3fa_jax.train import pretrained
from g3fa_jax.train import state as state_lib
from g3fa_jax.train import step as step_lib
from g3fa_jax.train import trainer

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / 'configs'


def load(name: str):
  return model_config.load_config(str(CONFIGS / f'{name}.py'))


def test_configs_official_and_paper_differ_where_documented():
  vox, paper, tiny = load('vox'), load('paper'), load('tiny')
  assert (vox.train.adam_b1, vox.train.adam_b2) == (0.5, 0.999)
  assert (paper.train.adam_b1, paper.train.adam_b2) == (0.5, 0.9)
  assert (vox.ensemble.w_rgb, vox.ensemble.w_depth, vox.ensemble.w_normal) == (1.0, 0.25, 0.25)
  assert (paper.ensemble.w_rgb, paper.ensemble.w_depth, paper.ensemble.w_normal) == (0.5, 0.25,
                                                                                     0.25)
  assert vox.train.geometry_mode == 'detached'
  assert paper.train.geometry_mode == 'differentiable'
  assert vox.train.batch_size == 32 and vox.train.epoch_milestones == (60, 90)
  assert vox.train.loss_weights.perceptual == (10.0,) * 5
  assert not vox.pretrained.use_random_weights and tiny.pretrained.use_random_weights
  # `--config.batch_size` and `--config.train.batch_size` are one field.
  vox.batch_size = 64
  assert vox.train.batch_size == 64
  trainer.validate_config(tiny)


def test_the_gpu_job_trains_the_official_networks():
  # configs/synthetic_gpu.py: every parameter of the official networks (configs/vox.py), of the
  # same shape, and nothing else but the blend mask's convolution (its g3fa-jax option); the job
  # otherwise the main job's, with forty times its pairs (ten times the steps of four times the
  # batch).
  from flax import traverse_util  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models import networks  # pylint: disable=g-import-not-at-top
  gpu, vox, cpu_job = load('synthetic_gpu'), load('vox'), load('synthetic')

  def shapes(name, config):
    variables = jax.eval_shape(lambda rng: networks.init_variables(name, config, rng),
                               jax.random.PRNGKey(0))
    return {k: v.shape for k, v in traverse_util.flatten_dict(variables['params'], sep='/').items()}

  for name in ('kp_detector', 'generator', 'discriminator'):
    official, ours = shapes(name, vox), shapes(name, gpu)
    assert {k: ours.get(k) for k in official} == official, name
    assert {k.split('/')[-2] for k in set(ours) - set(official)} <= {'blend_mask'}, name
  assert gpu.job == cpu_job.job == 'synthetic_demo'
  assert gpu.model.generator_params.blend_warped_source
  steps = lambda c: c.batch_size * c.train.num_epochs * c.train.steps_per_epoch
  assert steps(gpu) == 40 * steps(cpu_job)
  trainer.validate_config(gpu)


@pytest.mark.parametrize('name', ['vox', 'paper', 'tiny', 'synthetic', 'synthetic_gpu'])
def test_every_training_sequence_can_be_overridden_on_the_command_line(name, monkeypatch):
  # ml_collections' flags override tuples, not lists: a list field would refuse
  # `--config.train.scales='(1.0, 0.5)'` with a flags parsing error.
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  argv = ['run_train.py', f'--config=configs/{name}.py',
          '--config.train.epoch_milestones=(7, 13)', '--config.train.scales=(1.0, 0.5)',
          '--config.train.loss_weights.perceptual=(1.0, 2.0, 0.0, 0.0, 0.0)',
          '--config.train.loss_weights.feature_matching=(1.0, 1.0, 1.0, 1.0)']
  monkeypatch.setattr('sys.argv', argv)  # config_flags reads the overrides from sys.argv.
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', f'configs/{name}.py', flag_values=values,
                                  lock_config=False)
  values(argv)
  train = values.config.train
  assert train.epoch_milestones == (7, 13) and train.scales == (1.0, 0.5)
  assert train.loss_weights.perceptual == (1.0, 2.0, 0.0, 0.0, 0.0)
  assert train.loss_weights.feature_matching == (1.0,) * 4
  # Code and tests may still assign lists: the field keeps its tuple type.
  train.scales = [1.0]
  assert train.scales == (1.0,)


@pytest.mark.parametrize('name', ['vox', 'paper', 'tiny', 'synthetic', 'synthetic_gpu'])
def test_no_config_field_is_a_list(name):
  # Every sequence a user may override is a tuple (see the test above); a list anywhere in a
  # config, the model's included, could not be changed on the command line.
  def lists(node, prefix=''):
    for key, value in node.items():
      if isinstance(value, ml_collections.ConfigDict):
        yield from lists(value, f'{prefix}{key}.')
      elif isinstance(value, list):
        yield f'{prefix}{key}'
  assert list(lists(load(name))) == []


def test_learning_rate_drops_tenfold_at_epoch_milestones():
  schedule = optim.learning_rate_schedule(2e-4, [60, 90], steps_per_epoch=10)
  assert float(schedule(0)) == pytest.approx(2e-4)
  assert float(schedule(599)) == pytest.approx(2e-4)
  assert float(schedule(600)) == pytest.approx(2e-5)
  assert float(schedule(899)) == pytest.approx(2e-5)
  assert float(schedule(900)) == pytest.approx(2e-6)


def test_schedule_lengths_from_dataset_size():
  config = load('tiny')
  config.train.steps_per_epoch = -1
  config.train.num_train_steps = -1
  config.batch_size = 4
  assert trainer.schedule_lengths(config, num_examples=18) == (4, 4 * config.train.num_epochs)
  config.train.num_train_steps = 7
  assert trainer.schedule_lengths(config, num_examples=18) == (4, 7)


def test_toy_batches_are_a_pure_function_of_seed_and_step():
  kwargs = dict(seed=3, num_videos=5, image_size=64, batch_size=4)
  a = toy.ToyPairs(**kwargs)
  b = toy.ToyPairs(**kwargs)
  first = [next(a) for _ in range(3)]
  b.set_state({'step': 2})
  np.testing.assert_array_equal(next(b)['driving'], first[2]['driving'])
  assert a.get_state() == {'step': 3}
  assert first[0]['source'].shape == (4, 64, 64, 3) and first[0]['source'].dtype == np.float32
  assert 0 <= first[0]['source'].min() and first[0]['source'].max() <= 1
  # Two processes' rows make up the global batch.
  halves = [toy.ToyPairs(**kwargs, process_index=i, process_count=2).local_batch(1)
            for i in range(2)]
  np.testing.assert_array_equal(np.concatenate([h['source'] for h in halves]),
                                first[1]['source'])


def test_missing_pretrained_checkpoint_says_how_to_make_it(tmp_path):
  config = load('vox')
  config.pretrained.unsup3d = str(tmp_path / 'nowhere')
  with pytest.raises(pretrained.PretrainedWeightsError,
                     match=r'config.pretrained.unsup3d=.*nowhere.*python -m g3fa_jax.convert unsup3d'):
    pretrained.frozen_variables(config)
  config.pretrained.unsup3d = ''
  with pytest.raises(pretrained.PretrainedWeightsError, match='use_random_weights=True'):
    pretrained.frozen_variables(config)


def test_pretrained_not_needed_when_its_loss_is_off():
  config = load('vox')
  config.pretrained.unsup3d = config.pretrained.vgg19 = '/nonexistent'
  config.train.loss_weights.generator_gan = 0.0
  config.train.loss_weights.perceptual = [0.0] * 5
  assert pretrained.frozen_variables(config) == {'unsup3d': None, 'vgg19': None}


def test_random_pretrained_weights_are_announced(monkeypatch):
  # Recorded at the call rather than through caplog: whether absl's records reach the root logger
  # depends on what other tests of the session did to absl's handler.
  warnings = []
  monkeypatch.setattr(pretrained.logging, 'warning',
                      lambda msg, *args: warnings.append(msg % args if args else msg))
  config = load('tiny')
  config.train.loss_weights.perceptual = [0.0] * 5  # Unsup3D only: quick.
  frozen = pretrained.frozen_variables(config)
  assert frozen['vgg19'] is None and frozen['unsup3d'] is not None
  assert any('RANDOM weights' in w for w in warnings)


def test_nonfinite_guard_names_the_step_and_the_last_good_checkpoint(tmp_path):
  config = load('tiny')
  manager = checkpointing.make_manager(tmp_path, config)
  checkpoints = checkpointing.CheckpointWriter(manager, config)
  guard = trainer._FiniteGuard(checkpoints)  # pylint: disable=protected-access
  guard.push(7, {'finite': jnp.float32(1), 'gen_gan': jnp.float32(0.5)})
  guard.push(8, {'finite': jnp.float32(0), 'gen_gan': jnp.float32(np.nan)})
  with pytest.raises(trainer.NonFiniteError, match=r'step 8: non-finite gen_gan.*no checkpoint'):
    guard.flush()
  manager.close()


def test_summary_grid_layout():
  images = {k: np.full((2, 8, 8, 3), i / 10, np.float32)
            for i, k in enumerate(trainer.SUMMARY_COLUMNS)}
  grid = trainer.summary_grid(images)
  assert grid.shape == (1, 16, 8 * len(trainer.SUMMARY_COLUMNS), 3)
  assert grid[0, 0, 8 * 2, 0] == pytest.approx(0.2)  # third column: generated


def _geometry_only_config(mode: str):
  """Tiny config whose only generator loss is the GAN term of the depth and normal critics."""
  config = load('tiny')
  weights = config.train.loss_weights
  weights.perceptual = [0.0] * 5
  weights.feature_matching = [0.0] * 4
  weights.equivariance_value = 0.0
  weights.equivariance_jacobian = 0.0
  config.ensemble.w_rgb = 0.0
  config.train.geometry_mode = mode
  return config


@pytest.mark.parametrize('mode', ['detached', 'differentiable'])
def test_geometry_gradient_reaches_generator_only_when_differentiable(mode):
  config = _geometry_only_config(mode)
  optimizers = optim.make_optimizers(config, steps_per_epoch=10)
  state = jax.jit(functools.partial(state_lib.init_train_state, config, optimizers))(
      jax.random.PRNGKey(0))
  frozen = pretrained.frozen_variables(config)
  batch = toy.ToyPairs(seed=0, num_videos=4, image_size=64,
                                        batch_size=2).global_batch(0)
  grads_fn = jax.jit(functools.partial(
      step_lib.generator_gradients, nets=step_lib.Networks.from_config(config),
      settings=step_lib.StepSettings.from_config(config)))
  grads, losses = grads_fn(state, batch, frozen)
  assert set(losses) == {'gen_gan'} and np.isfinite(float(losses['gen_gan']))
  norm = float(optax.tree.norm(grads['generator']))
  if mode == 'detached':
    assert norm == 0.0
    assert float(optax.tree.norm(grads['kp_detector'])) == 0.0
  else:
    assert norm > 0.0


def test_bfloat16_compute_keeps_float32_state_and_outputs():
  config = load('tiny')
  config.train.compute_dtype = 'bfloat16'
  settings = step_lib.StepSettings.from_config(config)
  assert settings.compute_dtype == jnp.bfloat16
  nets = step_lib.Networks.from_config(config)
  variables = jax.jit(lambda r: nets.discriminator.init(r, jnp.zeros((1, 64, 64, 3))))(
      jax.random.PRNGKey(0))
  params, collections = state_lib.split_variables(variables)
  disc = step_lib._Stateful(nets.discriminator, params, collections, jnp.bfloat16)  # pylint: disable=protected-access
  out = jax.jit(lambda x: (disc(x), disc.collections))(jnp.full((2, 64, 64, 3), 0.5))
  (maps, updated) = out
  assert maps['prediction_map_1'].dtype == jnp.float32
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(updated))
  assert not np.allclose(updated['spectral']['discs_1']['down_blocks_1']['conv']['u'],
                         collections['spectral']['discs_1']['down_blocks_1']['conv']['u'])


def test_bfloat16_step_runs_every_convolution_in_bfloat16():
  """The keypoints stay float32 (sampling coordinates); their heatmaps, fed to the dense motion's
  hourglass beside the bfloat16 image, once promoted the hourglass and everything after it (the
  renderer, the SPADE decoder: most of the step) to float32 under compute_dtype='bfloat16'."""
  import re  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(CONFIGS.parent / 'benchmarks'))
  import step_setup  # pylint: disable=g-import-not-at-top
  config = load('tiny')
  config.train.compute_dtype = 'bfloat16'
  step = step_setup.jitted_train_step(step_setup.override(config, batch_size=2))
  text = step.lower().as_text()
  outputs = re.findall(r'stablehlo\.convolution\(.*?\)\s*->\s*tensor<(?:\d+x)*(\w+?)>', text)
  assert len(outputs) > 100  # every network's forward and backward
  assert set(outputs) == {'bf16'}, {d: outputs.count(d) for d in set(outputs)}


def test_pretrained_checkpoints_written_like_the_converters_load(tmp_path):
  from g3fa_jax import checkpoint as ckpt  # pylint: disable=g-import-not-at-top
  config = load('tiny')
  rng = jax.random.PRNGKey(3)
  written = {name: jax.device_get(pretrained.random_variables(name, config, rng))
             for name in ('unsup3d', 'vgg19')}
  for name, variables in written.items():
    ckpt.save_checkpoint(tmp_path / name, 0, {name: variables}, config.to_dict(), source='test')
  config.pretrained.use_random_weights = False
  config.pretrained.unsup3d = str(tmp_path / 'unsup3d')
  config.pretrained.vgg19 = str(tmp_path / 'vgg19')
  frozen = pretrained.frozen_variables(config)
  for name in written:
    np.testing.assert_array_equal(
        jax.tree_util.tree_leaves(frozen[name])[0], jax.tree_util.tree_leaves(written[name])[0])
  # An Unsup3D of another size than the config's is refused, naming the checkpoint.
  config.unsup3d.nf = 64
  with pytest.raises(ValueError, match='unsup3d.*does not fit'):
    pretrained.frozen_variables(config)
