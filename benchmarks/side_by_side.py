"""Helpers of the side-by-side benchmarks: the official PyTorch figure from a subprocess, the
machine's name and load, and the ratio of two medians.

The official code is never imported into the benchmark's own process (its torch threads and
imports would disturb the JAX figures); `official_torch.py` runs it in a subprocess and prints one
JSON line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
from typing import Any, Callable, Optional

OFFICIAL_SCRIPT = pathlib.Path(__file__).resolve().parent / 'official_torch.py'


def load_averages() -> list[float]:
  """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return []


def cpu_model() -> str:
  """The processor's model name (`lscpu`'s 'Model name'), or platform.processor()."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
  """What the figures were measured on: CPU model, cores visible, load averages now."""
  return {'cpu': cpu_model(), 'cpus': os.cpu_count(), 'load_averages': load_averages()}


def official_missing_reason(official: str) -> Optional[str]:
  """Why the official side cannot run (None when it can), without importing torch here."""
  if importlib.util.find_spec('torch') is None:
    return 'torch is not installed'
  if not official or not os.path.isfile(os.path.join(official, 'modules', 'generator.py')):
    return f'{official!r} is not a clone of the official code (no modules/generator.py)'
  return None


def official_command(official: str, mode: str, batch: int, size: int, steps: int, warmup: int,
                     device: str = 'cpu', threads: int = 0) -> list[str]:
  """The command line of `official_torch.py` for one measurement."""
  return [sys.executable, str(OFFICIAL_SCRIPT), '--official', official, '--mode', mode,
          '--batch', str(batch), '--size', str(size), '--steps', str(steps),
          '--warmup', str(warmup), '--device', device, '--threads', str(threads)]


def parse_last_json(stdout: str) -> Optional[dict[str, Any]]:
  """The last line of `stdout` that is a JSON object, or None."""
  for line in reversed(stdout.strip().splitlines()):
    line = line.strip()
    if line.startswith('{'):
      try:
        return json.loads(line)
      except json.JSONDecodeError:
        continue
  return None


def official_device(requested: Optional[str], jax_backend: str) -> str:
  """The torch device of the official side: `requested`, else cuda when JAX runs on a GPU (so
  that both sides of a side-by-side figure run on the same kind of device)."""
  return requested or ('cuda' if jax_backend == 'gpu' else 'cpu')


def run_official(official: str, mode: str, batch: int, size: int, steps: int, warmup: int,
                 device: str = 'cpu', threads: int = 0,
                 timeout_s: Optional[float] = None) -> dict[str, Any]:
  """Runs the official measurement in a subprocess; {'skipped': reason} when it cannot run.

  Missing torch, a path that is not a clone, a size other than 256 or a failed run all give a
  'skipped' result with the reason instead of an exception, so the JAX figure still stands.
  """
  reason = official_missing_reason(official)
  if reason:
    return {'impl': 'official-pytorch', 'skipped': reason}
  if size != 256:
    return {'impl': 'official-pytorch', 'skipped': f'the official code only runs at 256x256, '
                                                   f'not {size}x{size}'}
  command = official_command(official, mode, batch, size, steps, warmup, device, threads)
  try:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                          check=False)
  except subprocess.TimeoutExpired:
    return {'impl': 'official-pytorch', 'skipped': f'timed out after {timeout_s} s'}
  result = parse_last_json(done.stdout)
  if done.returncode != 0 or result is None:
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ['no output']
    return {'impl': 'official-pytorch',
            'skipped': f'the official run failed (exit {done.returncode}): {tail[0]}'}
  return result


def ratio(official_seconds: Optional[float], ours_seconds: Optional[float]) -> Optional[float]:
  """How many times faster ours is (official time / our time); None if either is missing."""
  if not official_seconds or not ours_seconds:
    return None
  return round(official_seconds / ours_seconds, 3)


def time_side_by_side(run_ours: Callable[[], list[float]],
                      run_official: Optional[Callable[[], dict[str, Any]]], rounds: int
                      ) -> tuple[list[float], list[dict[str, Any]]]:
  """Alternates the official measurement (first) and ours `rounds` times.

  Returns (all our timed seconds, the official results of each round).
  """
  ours, official = [], []
  for _ in range(rounds):
    if run_official is not None:
      official.append(run_official())
    ours.extend(run_ours())
  return ours, official


def official_summary(results: list[dict[str, Any]], key: str = 'step_s_all'
                     ) -> Optional[dict[str, Any]]:
  """The official side over rounds: median of all timed values, or the first 'skipped' reason."""
  if not results:
    return None
  skipped = [r['skipped'] for r in results if 'skipped' in r]
  if skipped:
    return {'skipped': skipped[0]}
  times = [t for r in results for t in r[key]]
  return {'median_s': statistics.median(times), 'all_s': [round(t, 4) for t in times],
          'torch': results[0].get('torch'), 'threads': results[0].get('threads'),
          'device': results[0].get('device')}


def format_train_result(result: dict[str, Any]) -> str:
  """The human-readable lines of a bench_train result."""
  times = result['step_s_all']
  lines = [
      f'{result["devices"]}, batch {result["batch_size"]}, {result["image_size"]}x'
      f'{result["image_size"]}, {result["config_geometry_mode"]} geometry, '
      f'{result["compute_dtype"]}: compile {result["compile_s"]:.1f} s; step '
      f'{result["step_s_median"]:.3f} s (median of {len(times)}: '
      f'{", ".join(f"{t:.3f}" for t in times)}); {result["images_per_s"]:.3f} images/s; '
      f'peak host memory {result["peak_host_memory_mib"]:.0f} MiB; '
      f'XLA_FLAGS={result["xla_flags"]!r}']
  if result.get('mfu') is not None or result.get('peak_device_memory_mib') is not None:
    mfu = result.get('mfu')
    lines.append(f'MFU {100 * mfu:.1f} % of {result["peak_tflops"]:g} TFLOP/s'
                 if mfu is not None else 'MFU: unknown peak (--peak_tflops)')
    if result.get('peak_device_memory_mib') is not None:
      lines[-1] += f'; peak device memory {result["peak_device_memory_mib"]:.0f} MiB'
  official = result.get('official')
  if official is not None:
    if 'skipped' in official:
      lines.append(f'official: skipped ({official["skipped"]})')
    else:
      lines.append(f'official PyTorch step: {official["median_s"]:.3f} s (median of '
                   f'{len(official["all_s"])}: {", ".join(f"{t:.3f}" for t in official["all_s"])};'
                   f' torch {official["torch"]}, {official["threads"]} threads, '
                   f'{official["device"]}); ours / official speed: '
                   f'{result["speedup_vs_official"]:.2f}x')
  machine = result['machine']
  lines.append(f'machine: {machine["cpu"]}, {machine["cpus"]} CPUs; load averages before '
               f'{result["load_averages_before"]}, after {machine["load_averages"]}')
  return '\n'.join(lines)
