"""data_prep's cold start: frames/s of `python -m data_prep.prepare` on clips of mixed sizes.

  python benchmarks/bench_prepare.py                 # 8 astronaut clips, 8 frame sizes
  python benchmarks/bench_prepare.py --workers 2

Runs the CLI three times in fresh processes on the same clips (each into a new output folder):
cold (an empty JAX compilation cache: every MTCNN shape compiles), warm (the cache the cold run
filled), and with the cache switched off (`--no-compile-cache`; what every run cost before the
cache). Prints the seconds `prepare` reports and the frames/s (frames read / those seconds; the
process start and imports are not counted).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# pylint: disable=g-import-not-at-top,wrong-import-position
from data_prep import astronaut_clips
from g3fa_jax.media import video_io

SIZES = ((96, 96), (120, 160), (144, 144), (180, 320), (200, 200), (240, 320), (288, 288),
         (360, 640))


def make_clips(root: pathlib.Path, frames: int) -> int:
  """One clip per frame size (H, W) (the astronaut face, centre-cropped to W); total frames."""
  for i, (height, width) in enumerate(SIZES):
    side = max(height, width)
    clip = astronaut_clips.face_clip(frames, side, seed=i)
    top, left = (side - height) // 2, (side - width) // 2
    video_io.write_video(root / f'size{height}x{width}_1.mp4',
                         np.ascontiguousarray(clip[:, top:top + height, left:left + width]))
  return frames * len(SIZES)


def run(raw: pathlib.Path, out: pathlib.Path, cache: pathlib.Path | None, workers: int
        ) -> tuple[float, float, str]:
  """(seconds prepare reports, process wall seconds, its summary)."""
  command = [sys.executable, '-m', 'data_prep.prepare', '--input', str(raw), '--output',
             str(out), '--layout', 'flat', '--no-progress', '--workers', str(workers),
             '--test-fraction', '0']
  command += ['--compile-cache', str(cache)] if cache else ['--no-compile-cache']
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  start = time.perf_counter()
  result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, check=True)
  wall = time.perf_counter() - start
  seconds = float(re.search(r'processed in ([\d.]+) s', result.stdout).group(1))
  return seconds, wall, result.stdout


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--frames', type=int, default=40, help='frames per clip')
  parser.add_argument('--workers', type=int, default=0)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    (tmp / 'raw').mkdir()
    total = make_clips(tmp / 'raw', args.frames)
    print(f'{len(SIZES)} clips, {total} frames, sizes {SIZES}, workers {args.workers}')
    for name, cache in (('cold cache', tmp / 'cache'), ('warm cache', tmp / 'cache'),
                        ('no cache', None)):
      seconds, wall, summary = run(tmp / 'raw', tmp / name.replace(' ', '_'), cache,
                                   args.workers)
      written = re.search(r'written: (.*) records', summary).group(1)
      print(f'{name:>10}: {seconds:6.1f} s, {total / seconds:6.1f} frames/s '
            f'(process {wall:.1f} s; written {written})')
  return 0


if __name__ == '__main__':
  sys.exit(main())
