"""data_prep keeps the face detector's compiled programs in a persistent compilation cache: a
second run (or worker) loads them instead of compiling again."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip('skimage')

from data_prep import astronaut_clips  # pylint: disable=g-import-not-at-top

ROOT = pathlib.Path(__file__).resolve().parents[1]


def prepare(raw: pathlib.Path, out: pathlib.Path, cache: pathlib.Path) -> str:
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  env['JAX_PLATFORMS'] = 'cpu'
  result = subprocess.run(
      [sys.executable, '-m', 'data_prep.prepare', '--input', str(raw), '--output', str(out),
       '--layout', 'flat', '--size', '32', '--no-progress', '--test-fraction', '0',
       '--compile-cache', str(cache)],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def test_second_run_compiles_nothing_new(tmp_path):
  astronaut_clips.make_dataset(tmp_path / 'raw', 'flat', identities=1, clips=1, num_frames=10,
                               size=64)
  cache = tmp_path / 'cache'
  assert 'written: train 1' in prepare(tmp_path / 'raw', tmp_path / 'a', cache)
  entries = sorted(p.name for p in cache.iterdir())
  assert len(entries) >= 3  # P-Net's programs for the pyramid's sides, R-Net, O-Net
  assert 'written: train 1' in prepare(tmp_path / 'raw', tmp_path / 'b', cache)
  assert sorted(p.name for p in cache.iterdir()) == entries  # every program came from the cache
