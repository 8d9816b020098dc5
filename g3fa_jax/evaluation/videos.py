"""The test videos of a prepared dataset (`python -m data_prep.prepare` output), for evaluation."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib

import numpy as np
from PIL import Image

from g3fa_jax.data import index as index_lib
from g3fa_jax.data import records
from g3fa_jax.data import source as source_lib


@dataclasses.dataclass(frozen=True)
class Video:
  """One clip: its record number in the split, identity and frame count."""
  index: int
  identity: str
  num_frames: int


class VideoSet:
  """The clips of one split, decoded to float frames at the model's image size.

  Attributes:
    videos: every clip of the split, in record order.
    image_size: side of the frames returned by `frames` (resized when the data differ).
  """

  def __init__(self, data_dir: str | os.PathLike, split: str, image_size: int):
    self.data_dir = pathlib.Path(data_dir)
    split_index = index_lib.load_split(self.data_dir, split)
    if split_index.num_records == 0:
      raise ValueError(f'{self.data_dir}: the {split!r} split has no clips')
    self.split = split
    self.image_size = int(image_size)
    self._shard_paths = split_index.shard_paths
    self._clips = source_lib.ClipSource(split_index.shard_paths)
    self.videos = [Video(i, split_index.identities[int(ident)], int(n))
                   for i, (ident, n) in enumerate(zip(split_index.record_identity,
                                                      split_index.record_frames))]

  def __len__(self) -> int:
    return len(self.videos)

  @functools.cached_property
  def keys(self) -> list[str]:
    """Clip keys in record order (from the shard manifests, else from the records)."""
    keys: list[str] = []
    for path in self._shard_paths:
      manifest = pathlib.Path(path).with_suffix('.json')
      if not manifest.is_file():
        return [str(self._clips[v.index]['key']) for v in self.videos]
      keys.extend(str(r['key']) for r in json.loads(manifest.read_text())['records'])
    if len(keys) != len(self.videos):
      return [str(self._clips[v.index]['key']) for v in self.videos]
    return keys

  def index_of_key(self, key: str) -> int:
    """The record number of clip `key` (a clear error when it is not in the split)."""
    lookup = self._key_lookup
    if key not in lookup:
      raise KeyError(f'{self.data_dir}: no clip {key!r} in the {self.split!r} split')
    return lookup[key]

  @functools.cached_property
  def _key_lookup(self) -> dict[str, int]:
    return {k: i for i, k in enumerate(self.keys)}

  def frames(self, video: Video, max_frames: int = -1) -> np.ndarray:
    """(T, S, S, 3) float32 frames in [0, 1] (the first `max_frames` when > 0)."""
    count = video.num_frames if max_frames <= 0 else min(video.num_frames, max_frames)
    record = self._clips[video.index]
    out = np.empty((count, self.image_size, self.image_size, 3), np.float32)
    for t in range(count):
      frame = records.decode_image(record['frames'][t])
      if frame.shape[:2] != (self.image_size, self.image_size):
        frame = np.asarray(Image.fromarray(frame).resize((self.image_size, self.image_size),
                                                         Image.BILINEAR))
      out[t] = frame.astype(np.float32) / 255.0
    return out
