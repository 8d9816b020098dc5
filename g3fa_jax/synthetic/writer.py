"""Synthetic talking heads written as training shards (resumable; `python -m data_prep.synthetic`).

Every clip of `dataset.plan(settings)` is rendered (`dataset.render_items`, optionally in worker
processes) into one record of the same ArrayRecord format as prepared real videos
(`g3fa_jax.data.shards`), with the ground-truth depth and normal maps where real data keeps its
optional Unsup3D maps; the split is identity-disjoint (test: the last ~10% of the identities).
Deterministic for a seed; a rerun with the same settings only adds missing clips.

  summary = writer.generate('data/synthetic', dataset.Settings(videos=300))
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pathlib
import sys
import time
from typing import Any, Iterator

from g3fa_jax.data import records
from g3fa_jax.data import shards
from g3fa_jax.media import paths
from g3fa_jax.synthetic import dataset

GEOMETRY_SOURCE = 'ground truth (g3fa_jax.synthetic renderer)'


# Worker side (spawned processes): settings arrive once through the pool initializer.
_WORKER: dict[str, Any] = {}


def _init_worker(settings: dataset.Settings) -> None:
  _WORKER['settings'] = settings


def _work(item: dataset.ClipPlan) -> tuple[dataset.ClipPlan, bytes, dict[str, Any]]:
  record = dataset.render_item(item, _WORKER['settings'])
  return item, records.serialize(record), records.metadata(record)


def default_workers(num_clips: int) -> int:
  """Worker processes for `num_clips` clips.

  One process already keeps two cores busy (XLA's threads render while this thread encodes), so
  only machines with more cores get workers (one per two cores, up to 8), and only for enough
  clips to repay each worker's compilation (~10 s).
  """
  cores = os.cpu_count() or 1
  if num_clips < 48 or cores <= 2:
    return 0
  return min(8, cores // 2)


@dataclasses.dataclass
class Summary:
  """What a `generate` run did."""
  planned: int = 0
  already_done: int = 0
  written: dict[str, int] = dataclasses.field(default_factory=dict)
  frames: int = 0
  seconds: float = 0.0
  workers: int = 0
  index: dict[str, Any] = dataclasses.field(default_factory=dict)

  def text(self, out_dir: pathlib.Path) -> str:
    done = sum(self.written.values())
    rate = (f', {done / self.seconds:.2f} clips/s, {self.frames / self.seconds:.1f} frames/s'
            if done and self.seconds else '')
    lines = [f'{self.planned} clips planned, {self.already_done} already there, {done} written '
             f'in {self.seconds:.1f} s with {self.workers or "no"} worker processes{rate}']
    for name, s in sorted(self.index.get('splits', {}).items()):
      lines.append(f'  {name}: {s["num_records"]} clips, {len(s["identities"])} identities')
    lines.append(f'  index: {out_dir / "index.json"}')
    return '\n'.join(lines)


def mark_geometry(out_dir: pathlib.Path, size: int) -> None:
  """Marks every finished shard's manifest as holding depth/normal maps (ground truth), so the
  index says `geometry: true` and `make_pair_dataset(..., with_geometry=True)` accepts it."""
  for manifest in shards.read_manifests(out_dir):
    if not manifest.get('geometry'):
      manifest['geometry'] = {'size': size, 'source': GEOMETRY_SOURCE}
      shards.write_json_atomic(out_dir / pathlib.Path(manifest['shard']).with_suffix('.json'),
                               manifest)


def _results(todo: list[dataset.ClipPlan], settings: dataset.Settings, workers: int
             ) -> Iterator[tuple[dataset.ClipPlan, bytes, dict[str, Any]]]:
  if workers <= 0:
    for item, record in dataset.render_items(todo, settings):
      yield item, records.serialize(record), records.metadata(record)
    return
  pool = multiprocessing.get_context('spawn').Pool(workers, initializer=_init_worker,
                                                   initargs=(settings,))
  try:
    yield from pool.imap(_work, todo, chunksize=1)
  finally:
    pool.terminate()
    pool.join()


def generate(out_dir: str | os.PathLike, settings: dataset.Settings = dataset.Settings(), *,
             workers: int = -1, progress: bool = True) -> Summary:
  """Writes (or completes) a synthetic dataset in `out_dir`; returns what was done.

  Args:
    out_dir: output folder (shards, manifests, index.json, prep_config.json).
    settings: what to generate.
    workers: worker processes (each compiles the renderer once); -1: `default_workers`.
    progress: show a progress bar (tqdm, when installed) on stderr.
  """
  start = time.time()
  settings.validate()
  out = paths.check_output_dir(out_dir, '--out')
  out.mkdir(parents=True, exist_ok=True)
  done, _ = shards.resume(out, settings.fingerprint(), 'use the same settings or another folder')
  items = dataset.plan(settings)
  todo = [item for item in items if dataset.clip_key(item) not in done]
  summary = Summary(planned=len(items), already_done=len(items) - len(todo))
  summary.workers = default_workers(len(todo)) if workers < 0 else workers
  writer = shards.SplitWriter(out, settings.records_per_shard)
  summary.written = writer.written
  bar = None
  if progress and todo:
    try:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      bar = tqdm(total=len(todo), unit='clip', dynamic_ncols=True, file=sys.stderr)
    except ImportError:
      pass
  try:
    for item, data, meta in _results(todo, settings, summary.workers):
      writer.add(item.split, data, meta)
      summary.frames += settings.frames
      if bar is not None:
        bar.update(1)
    writer.close()
  finally:
    if bar is not None:
      bar.close()
  mark_geometry(out, settings.size)
  summary.index = shards.build_index(out, (settings.size, settings.size), settings.encoding)
  summary.seconds = time.time() - start
  return summary
