"""benchmarks/step_setup.py: the training step that bench_train, profile_step and profile_ops time
(no timing is asserted)."""

from __future__ import annotations

import pathlib
import sys

import jax
import pytest

from g3fa_jax import model_config

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks'
sys.path.insert(0, str(BENCHMARKS))

import step_setup  # pylint: disable=g-import-not-at-top,wrong-import-position


def _config():
  return model_config.load_config('configs/synthetic.py')


def test_override_sets_the_shape_and_random_weights():
  config = step_setup.override(_config(), batch_size=2, image_size=32)
  assert (config.train.batch_size, config.image_size) == (2, 32)
  assert config.pretrained.use_random_weights
  kept = step_setup.override(_config(), random_weights=False)
  assert (kept.batch_size, kept.image_size) == (4, 64)
  assert not kept.pretrained.use_random_weights


def test_override_refuses_frames_too_small_for_the_perceptual_pyramid():
  with pytest.raises(ValueError, match='config.train.scales'):
    step_setup.override(_config(), image_size=8)


def test_jitted_step_trains_on_the_toy_batch():
  bench = step_setup.jitted_train_step(step_setup.override(_config(), batch_size=2))
  assert bench.batch['source'].shape == bench.batch['driving'].shape == (2, 64, 64, 3)
  before = jax.device_get(bench.state.params['generator'])
  compiled = bench.lower().compile()
  first = jax.device_get(bench.run(compiled))
  second = jax.device_get(bench.run(compiled))  # On the state the first step left (donated).
  assert int(bench.state.step) == 2
  assert first['finite'] == 1 and second['finite'] == 1
  assert first['generator_loss'] != second['generator_loss']
  after = jax.device_get(bench.state.params['generator'])
  moved = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda a, b: float(abs(a - b).max()), before, after))
  assert max(moved) > 0
