"""Writes shards atomically and keeps the bookkeeping that makes a rerun resumable.

The writing side of the format that `index` and `source` read; `data_prep.prepare` (real
clips) and `g3fa_jax.synthetic.writer` (rendered heads) write through it:

  done, _ = shards.resume(out_dir, settings, hint)     # keys already in finished shards
  writer = shards.SplitWriter(out_dir, records_per_shard=200)
  writer.add('train', records.serialize(record), records.metadata(record))
  writer.close()
  shards.build_index(out_dir, (256, 256), 'jpeg')

Output folder:
  <split>-NNNNN.array_record   records (one clip each), written as `.tmp` then renamed
  <split>-NNNNN.json           the shard's manifest (its records' metadata), written after the
                               shard; a shard without a manifest is unfinished and removed
  skipped-<run>.json           the clips a run skipped, with reasons
  prep_config.json             the settings of the first run (a rerun must use the same)
  index.json                   rebuilt from the manifests at the end of every run
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any, Callable, Iterable

from array_record.python import array_record_module

from g3fa_jax.data import index as index_lib

SHARD_RE = re.compile(r'^(?P<split>[a-z]+)-(?P<num>\d{5})\.array_record$')
MANIFEST_RE = re.compile(r'^(?P<split>[a-z]+)-(?P<num>\d{5})\.json$')


def write_json_atomic(path: pathlib.Path, data: Any) -> None:
  write_bytes_atomic(path, json.dumps(data, indent=1).encode())


def write_bytes_atomic(path: pathlib.Path, data: bytes) -> None:
  """Writes `data` to `path` through a temporary name and a rename (never half a file)."""
  tmp = path.with_name(path.name + '.tmp')
  with open(tmp, 'wb') as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


PREP_CONFIG = 'prep_config.json'


def check_prep_config(out_dir: pathlib.Path, settings: dict[str, Any], hint: str) -> None:
  """Records `settings` in `out_dir/prep_config.json`, or checks they equal the recorded ones.

  A rerun into the same folder resumes only with the same settings; otherwise a ValueError names
  every changed field, followed by `hint` (what to do).
  """
  path = out_dir / PREP_CONFIG
  if not path.exists():
    write_json_atomic(path, settings)
    return
  # JSON turns tuples into lists: compare what was stored with what storing gives now.
  changed = changed_fields(json.loads(path.read_text()), json.loads(json.dumps(settings)))
  if changed:
    detail = '; '.join(f'{k}: was {a!r}, now {b!r}' for k, (a, b) in changed.items())
    raise ValueError(f'{out_dir} was prepared with other settings ({detail}); {hint}')


def changed_fields(old: dict[str, Any], new: dict[str, Any], prefix: str = ''
                   ) -> dict[str, tuple[Any, Any]]:
  """{field: (old value, new value)} of the leaves that differ, nested dicts flattened; a
  `settings` level (the clip settings) is left out of the names, so they read as the flags."""
  changed = {}
  for key in list(old) + [k for k in new if k not in old]:
    a, b = old.get(key), new.get(key)
    if a == b:
      continue
    name = prefix + ('' if key == 'settings' else key)
    if isinstance(a, dict) and isinstance(b, dict):
      changed.update(changed_fields(a, b, name + '.' if name else ''))
    else:
      changed[name or key] = (a, b)
  return changed


class ShardWriter:
  """Appends records to `<split>-NNNNN.array_record.tmp`; `close()` publishes it."""

  def __init__(self, out_dir: pathlib.Path, split: str, number: int):
    self.name = f'{split}-{number:05d}'
    self.split = split
    self.path = out_dir / f'{self.name}.array_record'
    self.tmp = out_dir / f'{self.name}.array_record.tmp'
    self.manifest = out_dir / f'{self.name}.json'
    self.records: list[dict[str, Any]] = []
    self._writer = array_record_module.ArrayRecordWriter(
        str(self.tmp), 'group_size:1,uncompressed')  # frames are JPEG/PNG already

  def add(self, data: bytes, metadata: dict[str, Any]) -> None:
    self._writer.write(data)
    self.records.append(metadata)

  def close(self) -> None:
    self._writer.close()
    os.replace(self.tmp, self.path)
    write_json_atomic(self.manifest, {'shard': self.path.name, 'split': self.split,
                                      'num_records': len(self.records),
                                      'records': self.records})


class SplitWriter:
  """Records of every split into `<split>-NNNNN` shards of `records_per_shard` records each.

  A split's shard opens with its first record (numbered after the shards earlier runs left) and
  is published when full or at `close()`; `on_close(writer)` runs after each publication.

  Attributes:
    written: records added per split.
    shards_written: names of the published shard files, in order.
  """

  def __init__(self, out_dir: pathlib.Path, records_per_shard: int,
               on_close: Callable[[ShardWriter], None] | None = None):
    self.out_dir = pathlib.Path(out_dir)
    self.records_per_shard = int(records_per_shard)
    self.on_close = on_close
    self.written: dict[str, int] = {}
    self.shards_written: list[str] = []
    self._open: dict[str, ShardWriter] = {}

  def add(self, split: str, data: bytes, metadata: dict[str, Any]) -> None:
    if split not in self._open:
      self._open[split] = ShardWriter(self.out_dir, split, next_shard_number(self.out_dir, split))
    self._open[split].add(data, metadata)
    self.written[split] = self.written.get(split, 0) + 1
    if len(self._open[split].records) >= self.records_per_shard:
      self._publish(split)

  def _publish(self, split: str) -> None:
    writer = self._open.pop(split)
    writer.close()
    self.shards_written.append(writer.path.name)
    if self.on_close is not None:
      self.on_close(writer)

  def close(self) -> None:
    """Publishes every open shard."""
    for split in list(self._open):
      self._publish(split)


def resume(out_dir: pathlib.Path, settings: dict[str, Any], hint: str
           ) -> tuple[set[str], list[str]]:
  """Starts or resumes writing into `out_dir`.

  Checks `settings` against those of earlier runs (`check_prep_config`, with `hint`), removes
  unfinished shards, and returns (the keys of the records already in finished shards, the names
  of the files removed).
  """
  check_prep_config(out_dir, settings, hint)
  removed = clean_unfinished(out_dir)
  done = {r['key'] for m in read_manifests(out_dir) for r in m['records']}
  return done, removed


def clean_unfinished(out_dir: pathlib.Path) -> list[str]:
  """Removes temporary files and shards without a manifest; returns what was removed."""
  removed = []
  for p in sorted(out_dir.iterdir()):
    orphan = SHARD_RE.match(p.name) and not p.with_suffix('.json').exists()
    if p.name.endswith('.tmp') or orphan:
      p.unlink()
      removed.append(p.name)
  return removed


def read_manifests(out_dir: pathlib.Path) -> list[dict[str, Any]]:
  """The manifests of all finished shards, sorted by shard name."""
  manifests = []
  for p in sorted(out_dir.iterdir()):
    if MANIFEST_RE.match(p.name) and (out_dir / p.with_suffix('.array_record').name).exists():
      manifests.append(json.loads(p.read_text()))
  return manifests


def read_skipped(out_dir: pathlib.Path) -> list[dict[str, Any]]:
  """Skipped clips of all earlier runs (the latest entry per key)."""
  by_key = {}
  for p in sorted(out_dir.glob('skipped-*.json')):
    for entry in json.loads(p.read_text()):
      by_key[entry['key']] = entry
  return [by_key[k] for k in sorted(by_key)]


def next_shard_number(out_dir: pathlib.Path, split: str) -> int:
  numbers = [int(m['num']) for p in out_dir.iterdir()
             if (m := SHARD_RE.match(p.name) or MANIFEST_RE.match(p.name)) and m['split'] == split]
  return max(numbers, default=-1) + 1


def build_index(out_dir: pathlib.Path, frame_size: Iterable[int], encoding: str
                ) -> dict[str, Any]:
  """Rebuilds and atomically writes index.json from the manifests; returns it."""
  splits: dict[str, Any] = {}
  written = set()
  for manifest in read_manifests(out_dir):
    written.update(r['key'] for r in manifest['records'])
    s = splits.setdefault(manifest['split'], {'shards': [], 'identities': {},
                                              'record_identity': [], 'record_frames': [],
                                              'geometry': True})
    s['geometry'] = s['geometry'] and bool(manifest.get('geometry'))
    s['shards'].append({'file': manifest['shard'], 'num_records': manifest['num_records']})
    for rec in manifest['records']:
      s['record_identity'].append(s['identities'].setdefault(rec['identity'],
                                                             len(s['identities'])))
      s['record_frames'].append(rec['num_frames'])
  for s in splits.values():
    s['num_records'] = len(s['record_identity'])
    s['identities'] = list(s['identities'])
  index = {'format_version': index_lib.FORMAT_VERSION, 'frame_size': list(frame_size),
           'encoding': encoding, 'splits': splits,
           'skipped': [e for e in read_skipped(out_dir) if e['key'] not in written]}
  write_json_atomic(out_dir / index_lib.INDEX_NAME, index)
  return index
