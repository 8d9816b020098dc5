"""Synthetic talking heads with exact depth and normal maps, written as training shards.

  python -m data_prep.synthetic --out data/synthetic --videos 300
  python -m data_prep.synthetic --out DIR --videos N [--seed S] [--size 64] [--frames 32]
      [--identities K] [--workers W]

Procedural 3D heads (face shape, nose, eyes with blinks, mouth, ears, hair; own skin tone, texture
and colours per identity) turn, nod, tilt (yaw up to +-60 degrees), talk and blink under changing
light, sphere-traced in JAX (`g3fa_jax.synthetic`). Every clip is one record of the same
ArrayRecord format as prepared real videos, with the ground-truth depth and normal maps where real
data keeps its optional Unsup3D maps; the split is identity-disjoint (test: the last ~10% of the
identities). Deterministic for a seed; a rerun with the same settings only adds missing clips
(`g3fa_jax.synthetic.writer.generate` does the work).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Sequence

from g3fa_jax.synthetic import dataset
from g3fa_jax.synthetic import writer


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  d = dataset.Settings()
  p = argparse.ArgumentParser(prog='python -m data_prep.synthetic', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--out', required=True, help='output folder (shards, index.json)')
  p.add_argument('--videos', type=int, default=d.videos, help='number of clips')
  p.add_argument('--seed', type=int, default=d.seed)
  p.add_argument('--size', type=int, default=d.size, help='frame side in pixels')
  p.add_argument('--frames', type=int, default=d.frames, help='frames per clip')
  p.add_argument('--identities', type=int, default=d.identities,
                 help='distinct people (default: videos // 6, at least 2; -1: one per clip)')
  p.add_argument('--workers', type=int, default=-1,
                 help='worker processes (0: in this process; default: one per two cores '
                 'beyond two, up to 8)')
  return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  settings = dataset.Settings(videos=args.videos, identities=args.identities, frames=args.frames,
                              size=args.size, seed=args.seed)
  try:
    summary = writer.generate(args.out, settings, workers=args.workers)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(summary.text(pathlib.Path(args.out)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
