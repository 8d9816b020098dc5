"""Seconds per training step and images/s of a config, after compilation.

  python benchmarks/bench_train.py --config=configs/vox.py --batch_size=2 --image_size=256

Runs the jitted, sharded training step (generator + keypoint detector update, then the three
discriminators) on an in-memory toy batch, so data loading is not measured. Prints the
compile time, the median of `--steps` timed steps (after `--warmup` untimed ones), images/s (global
batch / median step time) and the peak resident memory of this process. Unsup3D and VGG19 get
random weights unless --real_weights (their speed does not depend on the values).
Any config field can be overridden: --config.train.compute_dtype=bfloat16.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import statistics
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/vox.py', 'Training config.',
                                          lock_config=False)
_BATCH = flags.DEFINE_integer('batch_size', None, 'Global batch (default: the config\'s).')
_SIZE = flags.DEFINE_integer('image_size', None, 'Frame size (default: the config\'s).')
_STEPS = flags.DEFINE_integer('steps', 5, 'Timed steps.')
_WARMUP = flags.DEFINE_integer('warmup', 1, 'Untimed steps after compilation.')
_REAL = flags.DEFINE_bool('real_weights', False, 'Load the pretrained Unsup3D / VGG19 named in '
                          'the config instead of random weights.')
_JSON = flags.DEFINE_bool('json', False, 'Also print the result as one JSON line.')
_TUNE_CPU = flags.DEFINE_bool('tune_cpu', True, 'Add the XLA:CPU flags of '
                              'g3fa_jax.train.xla_flags (as run_train.py does).')


def peak_host_memory_mib() -> float:
  """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / (1024 * 1024) if sys.platform == 'darwin' else peak / 1024


def main(argv) -> None:
  del argv
  if _TUNE_CPU.value:
    from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
    xla_flags.tune_cpu()
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.data import toy  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import optim  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import pretrained  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import sharding  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import trainer  # pylint: disable=g-import-not-at-top

  config = _CONFIG.value
  if _BATCH.value:
    config.batch_size = _BATCH.value
  if _SIZE.value:
    config.image_size = _SIZE.value
  if not _REAL.value:
    config.pretrained.use_random_weights = True
  trainer.validate_config(config)
  batch_size, size = int(config.train.batch_size), int(config.image_size)

  mesh = sharding.make_mesh()
  sharding.check_batch_size(batch_size, mesh)
  replicated, rows = sharding.replicated(mesh), sharding.batch_sharded(mesh)
  optimizers = optim.make_optimizers(config, steps_per_epoch=1000)
  frozen = sharding.replicate(pretrained.frozen_variables(config), mesh)
  state = jax.jit(functools.partial(state_lib.init_train_state, config, optimizers),
                  out_shardings=replicated)(jax.random.PRNGKey(config.seed))
  pairs = toy.ToyPairs(
      seed=0, num_videos=8, image_size=size, batch_size=batch_size,
      process_index=jax.process_index(), process_count=jax.process_count())
  batch = sharding.global_batch(pairs.local_batch(0), mesh)
  step = jax.jit(
      functools.partial(step_lib.train_step, nets=step_lib.Networks.from_config(config),
                        settings=step_lib.StepSettings.from_config(config),
                        optimizers=optimizers),
      in_shardings=(replicated, rows, replicated), out_shardings=(replicated, replicated),
      donate_argnums=(0,))

  start = time.perf_counter()
  compiled = step.lower(state, batch, frozen).compile()
  compile_s = time.perf_counter() - start
  for _ in range(_WARMUP.value):
    state, metrics = compiled(state, batch, frozen)
  jax.block_until_ready(state)
  times = []
  for _ in range(_STEPS.value):
    start = time.perf_counter()
    state, metrics = compiled(state, batch, frozen)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  median = statistics.median(times)
  finite = bool(np.asarray(jax.device_get(metrics['finite'])) == 1)
  result = {
      'config_geometry_mode': config.train.geometry_mode,
      'compute_dtype': config.train.compute_dtype,
      'batch_size': batch_size, 'image_size': size,
      'devices': f'{jax.device_count()} x {jax.devices()[0].device_kind}',
      'compile_s': round(compile_s, 1),
      'step_s_median': round(median, 3),
      'step_s_all': [round(t, 3) for t in times],
      'images_per_s': round(batch_size / median, 3),
      'peak_host_memory_mib': round(peak_host_memory_mib(), 0),
      'finite': finite,
  }
  result['xla_flags'] = os.environ.get('XLA_FLAGS', '')
  print(f'{result["devices"]}, batch {batch_size}, {size}x{size}, '
        f'{config.train.geometry_mode} geometry, {config.train.compute_dtype}: '
        f'compile {compile_s:.1f} s; step {median:.3f} s (median of {len(times)}: '
        f'{", ".join(f"{t:.3f}" for t in times)}); {batch_size / median:.3f} images/s; '
        f'peak host memory {result["peak_host_memory_mib"]:.0f} MiB; '
        f'XLA_FLAGS={result["xla_flags"]!r}')
  if _JSON.value:
    print(json.dumps(result))


if __name__ == '__main__':
  app.run(main)
