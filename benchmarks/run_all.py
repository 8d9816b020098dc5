"""Runs every speed benchmark of the project with the settings for this machine and writes one JSON.

  benchmarks/run_all.sh --out figures.json [--official /path/to/G3FA] [--budget_s 480] [--dry-run]

The machine decides the plan (`plan`):
- GPU / TPU: `bench_train.py` (configs/vox.py, 256x256) in float32 and bfloat16 at 8, 16 and 32
  images per device, each with step time, images/s, MFU and peak device memory; the official step
  side by side at each batch size in float32 (the official code has no bfloat16 path); and
  `bench_animate.py` at batch 1, 8, 32 and 128, official side by side; `profile_step.py` at 16
  images per device (per-network forward and forward+backward, the official networks on the GPU
  too). Ordered most telling first: batch 16 in both dtypes, the animation, batches 8 and 32,
  then the profile.
- CPU: `bench_train.py` at batch 2 (what fits a CPU in minutes), official and ours alternating for
  two rounds of 3 steps; `bench_animate.py` at batch 1 and 8, two rounds; `profile_step.py`
  (per-network forward and forward+backward, both implementations); `profile_ops.py` (one traced
  step, per kind of op and network); `bench_conv.py` at the SPADE decoder's 256x256 and 128x128
  shapes (one convolution's forward, input and weight gradient, XLA and PyTorch side by side).
Each benchmark writes its own JSON into a working folder; `assemble` merges them with the machine,
the date and the git commit into the --out file, rewritten after each benchmark. A benchmark that
fails is recorded with its exit status, and the others still run. --budget_s caps the whole run (a
lease on a shared accelerator): the benchmark running when it ends is stopped and the rest are
recorded as not run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import side_by_side  # pylint: disable=g-import-not-at-top,wrong-import-position

GPU_BATCHES_PER_DEVICE = (8, 16, 32)
GPU_FIRST_BATCH_PER_DEVICE = 16
# (size, in, out) of the convolutions `bench_conv.py` times on a CPU: the SPADE decoder's gamma and
# beta at 256x256 and 128x128 (batch 2), where XLA's weight gradient trails oneDNN's (docs/speed.md).
CPU_CONV_SHAPES = ((256, 128, 64), (128, 128, 256))
GPU_ANIMATE_BATCHES = '1,8,32,128'
DTYPES = ('float32', 'bfloat16')
# A benchmark is not started with less than this left of --budget_s (compilation alone takes ~1 min).
MIN_BENCHMARK_S = 60.


def plan(backend: str, device_count: int, official: Optional[str], workdir: str
         ) -> list[tuple[str, list[str]]]:
  """(name, argv) of each benchmark for a machine whose JAX backend is `backend` ('cpu', 'gpu',
  'tpu') with `device_count` devices; each argv writes `workdir/<name>.json`."""
  py = sys.executable
  train = [py, str(HERE / 'bench_train.py'), '--config=configs/vox.py', '--image_size=256']
  side = [f'--official={official}'] if official else []
  out = lambda name: os.path.join(workdir, f'{name}.json')
  runs = []
  if backend == 'cpu':
    runs.append(('train_float32_b2', train + ['--batch_size=2', '--steps=3', '--warmup=1',
                                              '--rounds=2', f'--json_out={out("train_float32_b2")}']
                 + side))
    runs.append(('animate', [py, str(HERE / 'bench_animate.py'), '--batch-sizes=1,8',
                             '--frames=8', '--repeats=2', '--rounds=2',
                             f'--json-out={out("animate")}'] + side))
    runs.append(('profile_b2', [py, str(HERE / 'profile_step.py'), '--config=configs/vox.py',
                                '--batch_size=2', '--repeats=3', f'--json_out={out("profile_b2")}']
                 + side))
    runs.append(('profile_ops_b2', [py, str(HERE / 'profile_ops.py'), '--config=configs/vox.py',
                                    '--batch_size=2', f'--json_out={out("profile_ops_b2")}']))
    for size, cin, cout in CPU_CONV_SHAPES:
      name = f'conv_{size}_{cin}x{cout}'
      runs.append((name, [py, str(HERE / 'bench_conv.py'), '--torch', f'--size={size}',
                          f'--in_channels={cin}', f'--out_channels={cout}',
                          f'--json_out={out(name)}']))
    return runs
  # Most telling first, so that a --budget_s that runs out drops the least: the middle batch in
  # both dtypes, the animation, then the other batches.
  order = sorted(GPU_BATCHES_PER_DEVICE, key=lambda b: b != GPU_FIRST_BATCH_PER_DEVICE)
  trains = []
  for per_device in order:
    for dtype in DTYPES:
      name = f'train_{dtype}_b{per_device}'
      args = train + [f'--batch_size={per_device * device_count}', '--steps=10', '--warmup=3',
                      f'--config.train.compute_dtype={dtype}', f'--json_out={out(name)}']
      trains.append((name, args + (side if dtype == 'float32' else [])))
  animate = ('animate', [py, str(HERE / 'bench_animate.py'),
                         f'--batch-sizes={GPU_ANIMATE_BATCHES}', '--frames=256', '--repeats=3',
                         f'--json-out={out("animate")}'] + side)
  profile_name = f'profile_b{GPU_FIRST_BATCH_PER_DEVICE}'
  profile = (profile_name, [py, str(HERE / 'profile_step.py'), '--config=configs/vox.py',
                            f'--batch_size={GPU_FIRST_BATCH_PER_DEVICE * device_count}',
                            '--repeats=5', f'--json_out={out(profile_name)}'] + side)
  runs.extend(trains[:len(DTYPES)] + [animate] + trains[len(DTYPES):] + [profile])
  return runs


def _git_commit() -> Optional[str]:
  try:
    done = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                          check=False)
  except OSError:
    return None
  return done.stdout.strip() or None


def _bf16_ratios(results: dict[str, Any]) -> None:
  """Gives each bfloat16 training run the ratio against the official float32 step of its batch."""
  for name, result in results.items():
    if not name.startswith('train_bfloat16_') or 'step_s_median' not in result:
      continue
    twin = results.get(name.replace('bfloat16', 'float32'), {})
    official = twin.get('official', {})
    if 'median_s' in official:
      result['official_float32'] = {'median_s': official['median_s']}
      result['speedup_vs_official'] = side_by_side.ratio(official['median_s'],
                                                         result['step_s_median'])


def assemble(workdir: str, names: list[str], failures: dict[str, dict[str, Any]],
             backend: str) -> dict[str, Any]:
  """One JSON of all figures: each benchmark's JSON by name, failures, machine, date, commit."""
  results = {}
  for name in names:
    path = pathlib.Path(workdir) / f'{name}.json'
    if name in failures:
      results[name] = failures[name]
    elif path.is_file():
      results[name] = json.loads(path.read_text())
    else:
      results[name] = {'error': 'the benchmark wrote no JSON'}
  _bf16_ratios(results)
  return {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
          'git_commit': _git_commit(), 'backend': backend, 'machine': side_by_side.machine(),
          'results': results}


def _backend() -> tuple[str, int]:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.default_backend(), jax.device_count()


def run_with_budget(runs: list[tuple[str, list[str]]], budget_s: Optional[float],
                    after_each: Callable[[dict[str, dict[str, Any]]], None] = lambda f: None,
                    min_start_s: float = MIN_BENCHMARK_S) -> dict[str, dict[str, Any]]:
  """Runs each benchmark in turn; returns {name: {'error': ...}} for those that failed, ran out of
  time or were not started because less than `min_start_s` of `budget_s` seconds (None: no limit)
  was left. A running benchmark is stopped when the budget ends. `after_each(failures)` is called
  after every one that ran."""
  failures: dict[str, dict[str, Any]] = {}
  deadline = None if budget_s is None else time.monotonic() + budget_s
  for name, argv in runs:
    left = None if deadline is None else deadline - time.monotonic()
    if left is not None and left < min_start_s:
      failures[name] = {'error': f'not run: the {budget_s:.0f} s budget was spent'}
      print(f'== {name}: not run (budget spent)', flush=True)
      continue
    print(f'== {name}: {" ".join(argv)}', flush=True)
    try:
      done = subprocess.run(argv, cwd=ROOT, check=False, timeout=left)
      if done.returncode != 0:
        failures[name] = {'error': f'exit {done.returncode}'}
    except subprocess.TimeoutExpired:
      failures[name] = {'error': f'stopped after {left:.0f} s: the {budget_s:.0f} s budget ended'}
    after_each(failures)
  return failures


def write_json_atomic(path: pathlib.Path, value: Any) -> None:
  """Writes `value` to `path` through a temporary file and a rename (no half-written file)."""
  partial = path.with_name(path.name + '.partial')
  partial.write_text(json.dumps(value, indent=1) + '\n')
  os.replace(partial, path)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--out', required=True, help='the JSON file to write')
  parser.add_argument('--official', default=os.environ.get('G3FA_OFFICIAL'),
                      help='a clone of the official code (default: $G3FA_OFFICIAL)')
  parser.add_argument('--budget_s', type=float, default=None,
                      help='seconds for all benchmarks: the most telling run first, a running one '
                           'is stopped and the rest skipped when they are spent (default: no limit)')
  parser.add_argument('--dry-run', action='store_true', help='print the plan, run nothing')
  args = parser.parse_args()
  out = pathlib.Path(args.out)
  if out.is_dir() or not out.parent.is_dir():
    parser.error(f'--out {args.out}: not a file in an existing folder')
  if args.budget_s is not None and args.budget_s <= 0:
    parser.error(f'--budget_s {args.budget_s}: must be a positive number of seconds')
  if args.official:
    reason = side_by_side.official_missing_reason(args.official)
    if reason:
      print(f'official side skipped: {reason}', flush=True)
      args.official = None
  backend, count = _backend()
  workdir = '<workdir>' if args.dry_run else tempfile.mkdtemp(prefix='g3fa_bench_')
  runs = plan(backend, count, args.official, workdir)
  print(f'{backend}: {count} device(s); {len(runs)} benchmarks', flush=True)
  if args.dry_run:
    for name, argv in runs:
      print(f'== {name}: {" ".join(argv)}', flush=True)
    return
  names = [name for name, _ in runs]
  # The JSON is rewritten after every benchmark, so what ran survives a stop.
  write = lambda failures: write_json_atomic(out, assemble(workdir, names, failures, backend))
  write(run_with_budget(runs, args.budget_s, write))
  print(f'wrote {out}')

if __name__ == '__main__':
  main()
