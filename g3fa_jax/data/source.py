"""Random-access data sources over prepared ArrayRecord shards (grain `RandomAccessDataSource`).

`ClipSource` gives whole clip records (frames still encoded); `GroupSource` gives, per training
item, the record indices it samples from: one video (official default) or all videos of one
identity (official `id_sampling`).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import grain
import numpy as np

from g3fa_jax.data import index as index_lib
from g3fa_jax.data import records


class ClipSource(grain.sources.RandomAccessDataSource):
  """The clips of one split: `source[i]` is record i as a dict (see `records`).

  With the split's `shard_sizes` it names where a record lives (`locate`); with its
  `record_frames` (the index's frame counts) `checked(i)` also compares the record's frame count
  with the index. Picklable (worker processes reopen the files).
  """

  def __init__(self, shard_paths: Sequence[str | os.PathLike],
               shard_sizes: Sequence[int] | None = None,
               record_frames: Sequence[int] | None = None):
    self.shard_paths = tuple(str(p) for p in shard_paths)
    if not self.shard_paths:
      raise ValueError('ClipSource needs at least one shard')
    self.shard_starts = (None if shard_sizes is None
                         else np.concatenate([[0], np.cumsum(shard_sizes)]).astype(np.int64))
    self.record_frames = None if record_frames is None else np.asarray(record_frames, np.int64)
    self._source = grain.sources.ArrayRecordDataSource(list(self.shard_paths))

  @classmethod
  def from_dir(cls, data_dir: str | os.PathLike, split: str = 'train') -> 'ClipSource':
    split_index = index_lib.load_split(data_dir, split)
    return cls(split_index.shard_paths, split_index.shard_sizes, split_index.record_frames)

  def locate(self, record_key: int) -> str:
    """'shard train-00001.array_record, record 3' for record `record_key` of the split."""
    i = int(record_key)
    if self.shard_starts is None:
      return f'record {i} of the split'
    shard = int(np.searchsorted(self.shard_starts, i, side='right')) - 1
    return (f'shard {os.path.basename(self.shard_paths[shard])}, '
            f'record {i - int(self.shard_starts[shard])}')

  def checked(self, record_key: int) -> dict[str, Any]:
    """Record `record_key`, after `records.check_consistent` (ValueError when it fails)."""
    record = self[record_key]
    expected = None if self.record_frames is None else int(self.record_frames[int(record_key)])
    records.check_consistent(record, expected)
    return record

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, record_key: int) -> dict[str, Any]:
    return records.deserialize(self._source[int(record_key)])

  def read_frames(self, record_key: int, frame_indices: Sequence[int] | None = None
                  ) -> np.ndarray:
    """Decoded frames (T, H, W, 3) uint8 of one clip (all of them by default)."""
    record = self[record_key]
    frames = record['frames']
    if frame_indices is None:
      frame_indices = range(len(frames))
    return np.stack([records.decode_image(frames[i]) for i in frame_indices])

  def __repr__(self) -> str:
    return f'ClipSource({len(self.shard_paths)} shards)'


class GroupSource(grain.sources.RandomAccessDataSource):
  """Item i -> int64 array of the record indices it draws a clip from.

  Stored flat (members + offsets) so that a million clips pickle cheaply to worker processes.
  """

  def __init__(self, members: np.ndarray, offsets: np.ndarray):
    self.members = np.asarray(members, np.int64)
    self.offsets = np.asarray(offsets, np.int64)

  @classmethod
  def from_groups(cls, groups: Sequence[np.ndarray]) -> 'GroupSource':
    groups = [np.asarray(g, np.int64) for g in groups if len(g)]
    sizes = np.array([len(g) for g in groups], np.int64)
    members = np.concatenate(groups) if groups else np.zeros((0,), np.int64)
    return cls(members, np.concatenate([[0], np.cumsum(sizes)]))

  @classmethod
  def videos(cls, num_records: int) -> 'GroupSource':
    """One item per clip (every clip gives a pair per epoch)."""
    return cls(np.arange(num_records), np.arange(num_records + 1))

  @classmethod
  def identities(cls, split: index_lib.SplitIndex) -> 'GroupSource':
    """One item per identity (a random clip of the identity per epoch)."""
    return cls.from_groups(split.identity_groups())

  def __len__(self) -> int:
    return len(self.offsets) - 1

  def __getitem__(self, record_key: int) -> np.ndarray:
    i = int(record_key)
    return self.members[self.offsets[i]:self.offsets[i + 1]]

  def __repr__(self) -> str:
    return f'GroupSource({len(self)} groups of {len(self.members)} records)'


def _keep_encoded_decoder():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  class KeepEncoded(tfds.decode.SkipDecoding):
    """Leaves a sequence of encoded images as bytes (numpy backend)."""

    def decode_batch_example_np(self, serialized_example):
      return serialized_example

    def decode_example_np(self, serialized_example):
      return serialized_example

  return KeepEncoded()


class TfdsClipSource(grain.sources.RandomAccessDataSource):
  """The clips of a TFDS `face_videos` split (see `data_prep.tfds_dataset`), like ClipSource.

  Frames stay encoded; `tfds.data_source` is opened lazily so the source pickles to workers.
  """

  def __init__(self, name: str, split: str = 'train', data_dir: str | os.PathLike | None = None):
    self.name, self.split = name, split
    self.data_dir = None if data_dir is None else str(data_dir)
    self._source = None

  def _open(self):
    if self._source is None:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
      self._source = tfds.data_source(self.name, split=self.split, data_dir=self.data_dir,
                                      decoders={'frames': _keep_encoded_decoder()})
    return self._source

  def __getstate__(self):
    return {**self.__dict__, '_source': None}

  def __len__(self) -> int:
    return len(self._open())

  def __getitem__(self, record_key: int) -> dict[str, Any]:
    example = dict(self._open()[int(record_key)])
    for key in ('key', 'identity', 'video', 'clip', 'source'):
      if isinstance(example.get(key), bytes):
        example[key] = example[key].decode()
    return example

  def locate(self, record_key: int) -> str:
    return f'{self.name} {self.split} example {int(record_key)}'

  def checked(self, record_key: int) -> dict[str, Any]:
    """Example `record_key`, after `records.check_consistent` (ValueError when it fails)."""
    example = self[record_key]
    records.check_consistent(example)
    return example

  def identities(self) -> tuple[tuple[str, ...], np.ndarray]:
    """(identity names, per-record identity index); reads every example (slow for big sets)."""
    names: dict[str, int] = {}
    ids = [names.setdefault(self[i]['identity'], len(names)) for i in range(len(self))]
    return tuple(names), np.asarray(ids, np.int32)

  def __repr__(self) -> str:
    return f'TfdsClipSource({self.name}, {self.split})'
