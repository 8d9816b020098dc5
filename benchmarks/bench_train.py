"""Seconds per training step and images/s of a config, after compilation.

  python benchmarks/bench_train.py --config=configs/vox.py --batch_size=2 --image_size=256

Runs the jitted, sharded training step (generator + keypoint detector update, then the three
discriminators) on an in-memory toy batch, so data loading is not measured. Prints the
compile time, the median of `--steps` timed steps (after `--warmup` untimed ones), images/s (global
batch / median step time) and the peak resident memory of this process. Unsup3D and VGG19 get
random weights unless --real_weights (their speed does not depend on the values).
Any config field can be overridden: --config.train.compute_dtype=bfloat16.

Side by side: --official PATH (a clone of github.com/dfki-av/G3FA, torch installed) also times the
official PyTorch step at the same batch and size in a subprocess (`official_torch.py`), and prints
both medians and the ratio official / ours (> 1: ours is faster). With --rounds N the two alternate
(official, ours, official, ours, ...) and each median is over all rounds' timed steps; the load
averages before and after are printed, since on a shared machine only such interleaved ratios mean
anything. Without torch or the clone the official side is skipped with a message.

On an accelerator it also prints model FLOPs utilisation (XLA's cost analysis of the compiled step
against the device's peak for the compute dtype, see device_figures.py) and the peak device
memory. --json_out writes the result as a JSON file.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
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
_OFFICIAL = flags.DEFINE_string('official', None, 'A clone of the official code: time its step '
                                'too, side by side.')
_OFFICIAL_DEVICE = flags.DEFINE_string('official_device', None, 'torch device of the official '
                                       'step (default: cuda when JAX runs on a GPU, else cpu).')
_ROUNDS = flags.DEFINE_integer('rounds', 1, 'Alternations official, ours (each round times '
                               '--steps steps of each).')
_PEAK_TFLOPS = flags.DEFINE_float('peak_tflops', None, 'Peak TFLOP/s of one device for the MFU '
                                  '(default: the table in device_figures.py).')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the result to this JSON file.')

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
# pylint: disable=g-import-not-at-top,wrong-import-position
import device_figures
import side_by_side


def peak_host_memory_mib() -> float:
  """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / (1024 * 1024) if sys.platform == 'darwin' else peak / 1024


def main(argv) -> None:
  del argv
  if _TUNE_CPU.value:
    from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
    xla_flags.tune_cpu()
  if _OFFICIAL.value:  # Leave accelerator memory to the official subprocess.
    os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import step_setup  # pylint: disable=g-import-not-at-top

  config = step_setup.override(_CONFIG.value, _BATCH.value, _SIZE.value,
                               random_weights=not _REAL.value)
  load_before = side_by_side.load_averages()
  bench = step_setup.jitted_train_step(config)
  batch_size, size = bench.batch_size, bench.image_size

  start = time.perf_counter()
  lowered = bench.lower()
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start
  holder = {'metrics': None, 'warm': False}

  def run_ours() -> list[float]:
    if not holder['warm']:
      for _ in range(_WARMUP.value):
        holder['metrics'] = bench.run(compiled)
      jax.block_until_ready(bench.state)
      holder['warm'] = True
    times = []
    for _ in range(_STEPS.value):
      start = time.perf_counter()
      holder['metrics'] = bench.run(compiled)
      jax.block_until_ready((bench.state, holder['metrics']))
      times.append(time.perf_counter() - start)
    return times

  run_official = None
  if _OFFICIAL.value:
    device = side_by_side.official_device(_OFFICIAL_DEVICE.value, jax.default_backend())
    run_official = functools.partial(
        side_by_side.run_official, _OFFICIAL.value, 'train', batch_size, size,
        steps=_STEPS.value, warmup=_WARMUP.value, device=device)
  times, official_runs = side_by_side.time_side_by_side(run_ours, run_official, _ROUNDS.value)
  median = statistics.median(times)
  finite = bool(np.asarray(jax.device_get(holder['metrics']['finite'])) == 1)
  result = {
      'benchmark': 'train_step',
      'config_geometry_mode': config.train.geometry_mode,
      'compute_dtype': config.train.compute_dtype,
      'batch_size': batch_size, 'image_size': size,
      'batch_per_device': batch_size // jax.device_count(),
      'devices': f'{jax.device_count()} x {jax.devices()[0].device_kind}',
      'compile_s': round(compile_s, 1),
      'step_s_median': round(median, 3),
      'step_s_all': [round(t, 3) for t in times],
      'images_per_s': round(batch_size / median, 3),
      'peak_host_memory_mib': round(peak_host_memory_mib(), 0),
      'finite': finite,
      'machine': side_by_side.machine(),
      'load_averages_before': load_before,
  }
  result.update(device_figures.accelerator_figures(
      compiled, median, jax.devices(), config.train.compute_dtype, _PEAK_TFLOPS.value,
      lowered=lowered))
  result['xla_flags'] = os.environ.get('XLA_FLAGS', '')
  official = side_by_side.official_summary(official_runs)
  if official is not None:
    result['official'] = official
    if 'median_s' in official:
      official['images_per_s'] = round(batch_size / official['median_s'], 3)
      result['speedup_vs_official'] = side_by_side.ratio(official['median_s'], median)
  print(side_by_side.format_train_result(result))
  if _JSON.value:
    print(json.dumps(result))
  if _JSON_OUT.value:
    pathlib.Path(_JSON_OUT.value).write_text(json.dumps(result, indent=1) + '\n')


if __name__ == '__main__':
  app.run(main)
