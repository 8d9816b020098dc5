"""The training input pipeline: prepared shards -> grain dataset of frame-pair batches.

  ds = make_pair_dataset('data/vox2', global_batch_size=32, seed=0, worker_count=4)
  it = iter(ds)
  batch = next(it)   # {'source': (B, H, W, 3) float32 in [0, 1], 'driving': same}

B is the per-process batch, `global_batch_size / jax.process_count()`; every process reads a
disjoint part of the split (grain `ShardByJaxProcess`). Per epoch every clip (or, with
`id_sampling`, every identity) gives one pair of two different random frames. Batches are a pure
function of (data, seed, settings, process index), whatever the worker count, and the iterator's
position is saved and restored with the training checkpoint (`g3fa_jax.train.checkpointing`).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import grain
import ml_collections
import numpy as np
from absl import flags

from g3fa_jax.data import index as index_lib
from g3fa_jax.data import pairs
from g3fa_jax.data import source as source_lib


def ignore_stop_signals(worker_index: int, worker_count: int) -> None:
  """grain worker init: SIGTERM and SIGINT are for the training process, which stops its workers
  itself (Ctrl-C and schedulers signal the whole process group; a worker that died of it would
  fail the next batch before the stop checkpoint is written)."""
  del worker_index, worker_count
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def data_config() -> ml_collections.ConfigDict:
  """Input pipeline settings (official `dataset_params` defaults)."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''            # folder written by `python -m data_prep.prepare` (has index.json)
  c.split = 'train'
  c.id_sampling = False      # official `id_sampling`: one item per identity instead of per clip
  c.distinct_frames = True   # official draws with replacement (a frame may pair with itself)
  c.worker_count = 2         # grain worker processes (0: in the training process)
  c.worker_buffer_size = 2
  c.read_threads = 2
  c.prefetch_batches = 2
  # Training skips pairs it cannot make (a frame that does not decode, an unreadable record,
  # frame counts that disagree) and stops when more than this fraction of the draws fail.
  c.max_bad_fraction = 0.01
  c.augmentation = ml_collections.ConfigDict(
      {'brightness': 0.1, 'contrast': 0.1, 'saturation': 0.1, 'hue': 0.1,
       'horizontal_flip': False, 'time_flip': False})
  return c


def make_pair_dataset(data_dir: str | os.PathLike, *, global_batch_size: int, seed: int = 0,
                      split: str = 'train', id_sampling: bool = False,
                      distinct_frames: bool = True,
                      augmentation: pairs.Augmentation = pairs.Augmentation(),
                      num_epochs: int | None = None, shuffle: bool = True,
                      worker_count: int = 0, worker_buffer_size: int = 2,
                      shard_options: grain.sharding.ShardOptions | None = None,
                      drop_remainder: bool = True, with_record_index: bool = False,
                      with_geometry: bool = False, tfds_name: str | None = None,
                      read_threads: int = 2, prefetch_batches: int = 2,
                      skip_bad: bool = False,
                      landmarks_of: pairs.LandmarksOf | None = None) -> grain.IterDataset:
  """A grain IterDataset of {'source', 'driving'} (B, H, W, 3) float32 batches in [0, 1].

  `iter()` of it is a checkpointable `grain.DatasetIterator`.

  Args:
    data_dir: prepared dataset folder (index.json and shards).
    global_batch_size: pairs per step over all processes; B = global / shard count.
    seed: shuffling and sampling seed.
    split: 'train' or 'test'.
    id_sampling: one item per identity (random clip of it) instead of one per clip.
    distinct_frames: the two frames differ (official: drawn with replacement).
    augmentation: colour jitter and flips.
    num_epochs: None for an endless stream.
    shuffle: shuffle the items, differently every epoch.
    worker_count: grain worker processes (0: in this process); batches do not depend on it.
    worker_buffer_size: batches buffered per worker.
    shard_options: which part of the data this process reads; default one shard per jax
      process (equal shard sizes).
    drop_remainder: drop the last incomplete batch of a finite stream.
    with_record_index: add 'record' (B,) int64, the record each pair came from.
    with_geometry: add the precomputed Unsup3D maps of both frames ('source_depth' (B, S, S, 1),
      'source_normal' (B, S, S, 3), 'driving_depth', 'driving_normal'; S = 64), see
      `data_prep.add_geometry`.
    landmarks_of: add the facial landmarks of both frames ('source_landmarks',
      'driving_landmarks' (B, L, 2) in [-1, 1]) given by this function of (record, frame
      indices, mirrored), e.g. `g3fa_jax.synthetic.landmarks.pair_landmarks` for synthetic clips.
    read_threads: threads computing batches ahead (per worker process, or in this one).
    prefetch_batches: batches computed ahead by those threads (memory: this many batches).
    tfds_name: read the TFDS dataset of this name (e.g. 'face_videos/256px_jpeg', built by
      `python -m data_prep.tfds_dataset`) from the TFDS data dir `data_dir` instead.
    skip_bad: replace a pair that cannot be made (unreadable record, frame counts that disagree,
      a frame that does not decode) by another draw, and add 'bad_pairs' (B,) int32, the failed
      draws before each pair, and 'bad_notes' (B,) str, one line per failed draw naming the
      shard, record and frame (`pairs.SamplePair`); without it such a pair raises
      `pairs.BadRecordError`.
  """
  if tfds_name:
    clips = source_lib.TfdsClipSource(tfds_name, split, data_dir)
    if id_sampling:
      names, record_identity = clips.identities()
      groups = source_lib.GroupSource.from_groups(
          [np.flatnonzero(record_identity == i) for i in range(len(names))])
    else:
      groups = source_lib.GroupSource.videos(len(clips))
  else:
    split_index = index_lib.load_split(data_dir, split)
    clips = source_lib.ClipSource(split_index.shard_paths, split_index.shard_sizes,
                                  split_index.record_frames)
    groups = (source_lib.GroupSource.identities(split_index) if id_sampling
              else source_lib.GroupSource.videos(split_index.num_records))
    if with_geometry and not split_index.geometry:
      raise ValueError(f'{data_dir} ({split}): no precomputed depth/normal maps; run '
                       f'`python -m data_prep.add_geometry --shards {data_dir} ...` first')
  if shard_options is None:
    shard_options = grain.sharding.ShardByJaxProcess(drop_remainder=True)
  count, index = shard_options.shard_count, shard_options.shard_index
  if global_batch_size % count:
    raise ValueError(f'global batch size {global_batch_size} is not divisible by the '
                     f'{count} data shards (processes)')
  batch_size = global_batch_size // count
  per_shard = len(groups) // count
  if per_shard < batch_size:
    raise ValueError(f'{data_dir} ({split}): {len(groups)} items over {count} shards '
                     f'cannot fill a batch of {batch_size}')
  ds = grain.MapDataset.source(groups)
  if count > 1:  # strided, equal-size shards: every process runs the same number of steps
    ds = ds.slice(slice(index, per_shard * count, count))
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.repeat(num_epochs)
  ds = ds.random_map(pairs.SamplePair(clips, augmentation, distinct=distinct_frames,
                                      with_record_index=with_record_index,
                                      with_geometry=with_geometry, skip_bad=skip_bad,
                                      landmarks_of=landmarks_of),
                     seed=seed + 1 + 7919 * index)
  it = ds.batch(batch_size, drop_remainder=drop_remainder).to_iter_dataset(
      grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch_batches))
  if worker_count:
    if not flags.FLAGS.is_parsed():
      # grain's workers read absl flags; outside an absl app they were never parsed.
      flags.FLAGS.mark_as_parsed()
    it = it.mp_prefetch(
        grain.MultiprocessingOptions(num_workers=worker_count,
                                     per_worker_buffer_size=worker_buffer_size),
        worker_init_fn=ignore_stop_signals)
  # uint8 -> float32 after the workers: a quarter of the bytes cross the process boundary.
  return it.map(pairs.ToFloat())


def dataset_from_config(config: ml_collections.ConfigDict, *, global_batch_size: int,
                        seed: int, **kwargs: Any) -> grain.IterDataset:
  """`make_pair_dataset` with the settings of `data_config()`; kwargs override."""
  settings = dict(split=config.split, id_sampling=config.id_sampling,
                  distinct_frames=config.distinct_frames, worker_count=config.worker_count,
                  worker_buffer_size=config.worker_buffer_size,
                  read_threads=config.get('read_threads', 2),
                  prefetch_batches=config.get('prefetch_batches', 2),
                  augmentation=pairs.Augmentation(**config.augmentation.to_dict()))
  settings.update(kwargs)
  return make_pair_dataset(config.data_dir, global_batch_size=global_batch_size, seed=seed,
                          **settings)
