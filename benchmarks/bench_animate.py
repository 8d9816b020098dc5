"""Animation throughput: frames/s of `Animator.animate` (keypoints + motion + generator), after
compilation.

  python benchmarks/bench_animate.py                         # vox-256 with random weights, 256x256
  python benchmarks/bench_animate.py --checkpoint DIR        # a converted or trained checkpoint
  python benchmarks/bench_animate.py --batch-sizes 1,4,16 --frames 32

Random weights time exactly like trained ones (same shapes, same ops). The first batch of each
batch size compiles and is not timed. For comparison, the official PyTorch implementation takes
2.09 s per 256x256 frame on a 2-thread CPU (torch 2.13).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# pylint: disable=g-import-not-at-top,wrong-import-position
from g3fa_jax import model_config
from g3fa_jax.inference.animator import Animator
from g3fa_jax.models import networks


def random_animator(size: int, seed: int = 0) -> Animator:
  """The vox-256 model with freshly initialised (random) weights, at `size` x `size`."""
  config = model_config.default_config()
  config.image_size = size
  rng_kp, rng_gen = jax.random.split(jax.random.PRNGKey(seed))
  init = lambda name, rng: jax.jit(lambda r: networks.init_variables(name, config, r))(rng)
  return Animator(config, init('kp_detector', rng_kp), init('generator', rng_gen))


def frames_per_second(animator: Animator, size: int, batch_size: int, num_frames: int,
                      repeats: int) -> tuple[float, float]:
  """(compile + first batch seconds, best frames/s over `repeats` timed runs)."""
  rng = np.random.default_rng(0)
  source = rng.random((size, size, 3), dtype=np.float32)
  driving = rng.random((num_frames, size, size, 3), dtype=np.float32)
  start = time.perf_counter()
  animator.animate(source, driving[:batch_size], batch_size=batch_size)
  first = time.perf_counter() - start
  best = 0.0
  for _ in range(repeats):
    start = time.perf_counter()
    out = animator.animate(source, driving, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    assert out.shape == driving.shape
    best = max(best, num_frames / elapsed)
  return first, best


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--checkpoint', default=None, help='orbax checkpoint (default: random vox-256)')
  parser.add_argument('--size', type=int, default=256, help='frame side (random model only)')
  parser.add_argument('--batch-sizes', default='1,4', help='comma-separated batch sizes')
  parser.add_argument('--frames', type=int, default=8, help='driving frames per timed run')
  parser.add_argument('--repeats', type=int, default=2, help='timed runs per batch size (best)')
  args = parser.parse_args()

  if args.checkpoint:
    animator = Animator.from_checkpoint(args.checkpoint)
    size = int(animator.config.get('image_size', 256))
  else:
    size = args.size
    animator = random_animator(size)
  print(f'device: {jax.devices()[0].device_kind} ({jax.default_backend()}), '
        f'{os.cpu_count()} CPUs visible; model: '
        f'{"checkpoint " + args.checkpoint if args.checkpoint else "vox-256, random weights"}, '
        f'{size}x{size}')
  for batch_size in (int(b) for b in args.batch_sizes.split(',')):
    num_frames = max(args.frames, batch_size)
    num_frames -= num_frames % batch_size
    first, fps = frames_per_second(animator, size, batch_size, num_frames, args.repeats)
    print(f'batch {batch_size:3d}: {fps:7.3f} frames/s ({1.0 / fps:6.3f} s/frame) over '
          f'{num_frames} frames; compile + first batch {first:.1f} s')


if __name__ == '__main__':
  main()
