"""Animation throughput: frames/s of `Animator.animate` (keypoints + motion + generator), after
compilation.

  python benchmarks/bench_animate.py                         # vox-256 with random weights, 256x256
  python benchmarks/bench_animate.py --checkpoint DIR        # a converted or trained checkpoint
  python benchmarks/bench_animate.py --batch-sizes 1,4,16 --frames 32

Random weights time exactly like trained ones (same shapes, same ops). The first batch of each
batch size compiles and is not timed; the figure is the median over `--repeats` timed runs.

Side by side: --official PATH (a clone of github.com/dfki-av/G3FA, torch installed) also times the
official animation (keypoints of the driving frames + generator, eval mode, no_grad) at the same
batch size in a subprocess (`official_torch.py --mode animate`) and prints seconds per frame of
both and the ratio official / ours (> 1: ours is faster). With --rounds N they alternate
(official, ours, ...). Without torch or the clone the official side is skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time
from typing import Any, Optional

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

# pylint: disable=g-import-not-at-top,wrong-import-position
from g3fa_jax import model_config
from g3fa_jax.inference.animator import Animator
from g3fa_jax.models import networks
import side_by_side


def random_animator(size: int, seed: int = 0, frames_per_pass: int | None = None) -> Animator:
  """The vox-256 model with freshly initialised (random) weights, at `size` x `size`."""
  config = model_config.default_config()
  config.image_size = size
  rng_kp, rng_gen = jax.random.split(jax.random.PRNGKey(seed))
  init = lambda name, rng: jax.jit(lambda r: networks.init_variables(name, config, r))(rng)
  return Animator(config, init('kp_detector', rng_kp), init('generator', rng_gen),
                  frames_per_pass=frames_per_pass)


def animation_timer(animator: Animator, size: int, batch_size: int, num_frames: int):
  """(seconds of the compile + first batch, a function that returns the seconds per frame of one
  timed run over `num_frames` frames)."""
  rng = np.random.default_rng(0)
  source = rng.random((size, size, 3), dtype=np.float32)
  driving = rng.random((num_frames, size, size, 3), dtype=np.float32)
  start = time.perf_counter()
  animator.animate(source, driving[:batch_size], batch_size=batch_size)
  first = time.perf_counter() - start

  def seconds_per_frame() -> float:
    start = time.perf_counter()
    out = animator.animate(source, driving, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    assert out.shape == driving.shape
    return elapsed / num_frames
  return first, seconds_per_frame


def measure_batch(animator: Animator, size: int, batch_size: int, num_frames: int, repeats: int,
                  rounds: int, official: Optional[str], device: str = 'cpu') -> dict[str, Any]:
  """Ours (and the official side when `official`, on torch `device`) at one batch size,
  alternating `rounds` times."""
  first, timer = animation_timer(animator, size, batch_size, num_frames)
  ours, theirs, skipped = [], [], None
  for _ in range(rounds):
    if official and skipped is None:
      result = side_by_side.run_official(official, 'animate', batch_size, size, steps=repeats,
                                         warmup=1, device=device)
      if 'skipped' in result:
        skipped = result['skipped']
      else:
        theirs.extend(t / batch_size for t in result['batch_s_all'])
    ours.extend(timer() for _ in range(repeats))
  row = {'batch_size': batch_size, 'frames_per_run': num_frames,
         'compile_and_first_batch_s': round(first, 1),
         'frame_s_median': statistics.median(ours), 'frame_s_all': ours,
         'frames_per_s': 1.0 / statistics.median(ours)}
  if official:
    if skipped is not None:
      row['official'] = {'skipped': skipped}
    else:
      median = statistics.median(theirs)
      row['official'] = {'frame_s_median': median, 'frame_s_all': theirs, 'device': device}
      row['speedup_vs_official'] = side_by_side.ratio(median, row['frame_s_median'])
  return row


def format_row(row: dict[str, Any]) -> str:
  """One line per batch size: ours, and the official figure and ratio when there is one."""
  line = (f'batch {row["batch_size"]:3d}: {row["frames_per_s"]:7.3f} frames/s '
          f'({row["frame_s_median"]:6.4f} s/frame, median of {len(row["frame_s_all"])} runs of '
          f'{row["frames_per_run"]} frames); compile + first batch '
          f'{row["compile_and_first_batch_s"]:.1f} s')
  official = row.get('official')
  if official and 'skipped' in official:
    line += f'; official: skipped ({official["skipped"]})'
  elif official:
    line += (f'; official {official["frame_s_median"]:.4f} s/frame (median of '
             f'{len(official["frame_s_all"])}, {official.get("device", "cpu")}); ours / official speed '
             f'{row["speedup_vs_official"]:.2f}x')
  return line


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--checkpoint', default=None, help='orbax checkpoint (default: random vox-256)')
  parser.add_argument('--size', type=int, default=256, help='frame side (random model only)')
  parser.add_argument('--batch-sizes', default='1,4', help='comma-separated batch sizes')
  parser.add_argument('--frames', type=int, default=8, help='driving frames per timed run')
  parser.add_argument('--repeats', type=int, default=2, help='timed runs per batch size and round')
  parser.add_argument('--official', default=None, help='a clone of the official code: time it too')
  parser.add_argument('--official-device', default=None,
                      help='torch device of the official side (default: cuda when JAX runs on a '
                           'GPU, else cpu)')
  parser.add_argument('--rounds', type=int, default=1, help='alternations official, ours')
  parser.add_argument('--frames-per-pass', type=int, default=None,
                      help='frames computed together within a batch (Animator frames_per_pass; '
                           'default: 1 on a CPU, the whole batch on an accelerator; 0: the whole '
                           'batch)')
  parser.add_argument('--json-out', default=None, help='write the result to this JSON file')
  args = parser.parse_args()
  try:
    batch_sizes = [int(b) for b in args.batch_sizes.split(',')]
  except ValueError:
    parser.error(f'--batch-sizes {args.batch_sizes!r}: use comma-separated integers, e.g. 1,4')
  if min(batch_sizes) < 1:
    parser.error(f'--batch-sizes {args.batch_sizes!r}: batch sizes must be >= 1')

  if args.checkpoint:
    animator = Animator.from_checkpoint(args.checkpoint, frames_per_pass=args.frames_per_pass)
    size = int(animator.config.get('image_size', 256))
  else:
    size = args.size
    animator = random_animator(size, frames_per_pass=args.frames_per_pass)
  load_before = side_by_side.load_averages()
  print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}), '
        f'{os.cpu_count()} CPUs visible; model: '
        f'{"checkpoint " + args.checkpoint if args.checkpoint else "vox-256, random weights"}, '
        f'{size}x{size}; frames per pass: {animator.frames_per_pass or "the whole batch"}',
        flush=True)
  rows = []
  device = side_by_side.official_device(args.official_device, jax.default_backend())
  for batch_size in batch_sizes:
    num_frames = max(args.frames, batch_size)
    num_frames -= num_frames % batch_size
    rows.append(measure_batch(animator, size, batch_size, num_frames, args.repeats, args.rounds,
                              args.official, device))
    print(format_row(rows[-1]), flush=True)
    result = {'benchmark': 'animate', 'image_size': size,
              'device': f'{jax.device_count()} x {jax.devices()[0].device_kind}',
              'official_device': device if args.official else None,
              'machine': side_by_side.machine(), 'load_averages_before': load_before,
              'rows': rows}
    if args.json_out:  # after every batch size, so that a stopped run keeps what it measured
      pathlib.Path(args.json_out).write_text(json.dumps(result, indent=1) + '\n')
  print(f'machine: {result["machine"]["cpu"]}; load averages before {load_before}, after '
        f'{result["machine"]["load_averages"]}')


if __name__ == '__main__':
  main()
