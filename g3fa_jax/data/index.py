"""The dataset index (`index.json`) beside the shards (written by `shards.build_index`).

  {
    "format_version": 1,
    "frame_size": [256, 256], "encoding": "jpeg",
    "splits": {
      "train": {
        "shards": [{"file": "train-00000.array_record", "num_records": 200}, ...],
        "num_records": N, "identities": ["id00012", ...],
        "record_identity": [0, 0, 3, ...],   # per record, in shard order: index into identities
        "record_frames": [132, 97, ...],     # per record: number of frames
        "geometry": false                    # every record has depth/normal maps
      },
      "test": {...}
    },
    "skipped": [{"key": ..., "source": ..., "reason": ..., "detail": ...}, ...]
  }

Records of a split are numbered in shard order (shards sorted by file name, records in file
order), which is the order of the split's ArrayRecord data source.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

import numpy as np

INDEX_NAME = 'index.json'
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class SplitIndex:
  """One split of a prepared dataset.

  Attributes:
    shard_paths: absolute paths of the split's ArrayRecord files, in record order.
    shard_sizes: records per shard.
    identities: identity names.
    record_identity: (N,) int32, the identity index of every record.
    record_frames: (N,) int32, the frame count of every record.
    geometry: every record holds Unsup3D depth and normal maps (`data_prep.add_geometry`).
  """
  shard_paths: tuple[str, ...]
  shard_sizes: tuple[int, ...]
  identities: tuple[str, ...]
  record_identity: np.ndarray
  record_frames: np.ndarray
  geometry: bool = False

  @property
  def num_records(self) -> int:
    return int(sum(self.shard_sizes))

  def identity_groups(self) -> list[np.ndarray]:
    """Per identity (in `identities` order) the indices of its records."""
    order = np.argsort(self.record_identity, kind='stable')
    bounds = np.searchsorted(self.record_identity[order], np.arange(len(self.identities) + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(len(self.identities))]


def load_index(root: str | os.PathLike) -> dict[str, Any]:
  """The raw index dict of a prepared dataset folder."""
  path = pathlib.Path(root) / INDEX_NAME
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no dataset index; run `python -m data_prep.prepare` first')
  try:
    index = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f'{path}: not valid JSON ({e})') from e
  if index.get('format_version') != FORMAT_VERSION:
    raise ValueError(f'{path}: format_version {index.get("format_version")!r}, '
                     f'expected {FORMAT_VERSION}')
  return index


def load_split(root: str | os.PathLike, split: str) -> SplitIndex:
  """The split ('train' / 'test') of a prepared dataset folder."""
  root = pathlib.Path(root)
  index = load_index(root)
  if split not in index['splits']:
    raise ValueError(f'{root / INDEX_NAME}: no split {split!r} '
                     f'(has {sorted(index["splits"])})')
  s = index['splits'][split]
  paths = tuple(str(root / shard['file']) for shard in s['shards'])
  for p in paths:
    if not os.path.isfile(p):
      raise FileNotFoundError(f'{p}: shard listed in {root / INDEX_NAME} is missing')
  return SplitIndex(shard_paths=paths,
                    shard_sizes=tuple(int(shard['num_records']) for shard in s['shards']),
                    identities=tuple(s['identities']),
                    record_identity=np.asarray(s['record_identity'], np.int32),
                    record_frames=np.asarray(s['record_frames'], np.int32),
                    geometry=bool(s.get('geometry', False)))
