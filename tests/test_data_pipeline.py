"""grain input pipeline: pair batches, determinism, checkpoint/restore, process sharding."""

from __future__ import annotations

import pathlib

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image, ImageEnhance

pytest.importorskip('skimage')

from data_prep import prepare  # pylint: disable=g-import-not-at-top
from data_prep import process_clip
from data_prep import astronaut_clips
from g3fa_jax.data import augment
from g3fa_jax.data import index as index_lib
from g3fa_jax.data import pairs
from g3fa_jax.data import pipeline
from g3fa_jax.train import checkpointing

SIZE = 32
NO_JITTER = pairs.Augmentation(brightness=0, contrast=0, saturation=0, hue=0)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory) -> pathlib.Path:
  """5 identities x 2 clips of 10 frames, whole-frame crops (no detector: fast)."""
  raw = tmp_path_factory.mktemp('raw')
  astronaut_clips.make_dataset(raw, 'voxceleb2', identities=5, clips=2, num_frames=10, size=64)
  out = tmp_path_factory.mktemp('prepared')
  settings = process_clip.ClipSettings(size=SIZE, crop='full', face_check=False)
  prepare.run(str(raw), str(out), settings=settings, records_per_shard=3, test_fraction=0,
              progress=False)
  return out


def make(data_dir, **kwargs):
  kwargs.setdefault('global_batch_size', 4)
  kwargs.setdefault('shard_options', grain.sharding.NoSharding())
  return pipeline.make_pair_dataset(data_dir, **kwargs)


def take(ds_or_it, n):
  it = iter(ds_or_it)
  return [next(it) for _ in range(n)]


def assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert sorted(x) == sorted(y)
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


def test_batches_shape_dtype_range(data_dir):
  batch = take(make(data_dir, seed=0), 1)[0]
  assert sorted(batch) == ['driving', 'source']
  for k in ('source', 'driving'):
    assert batch[k].shape == (4, SIZE, SIZE, 3) and batch[k].dtype == np.float32
    assert 0.0 <= batch[k].min() and batch[k].max() <= 1.0 and batch[k].std() > 0.01


def test_two_different_frames_per_pair(data_dir):
  for batch in take(make(data_dir, seed=1, augmentation=NO_JITTER), 5):
    diff = np.abs(batch['source'] - batch['driving']).reshape(4, -1).max(axis=1)
    assert np.all(diff > 0)


def test_same_seed_same_batches(data_dir):
  a = take(make(data_dir, seed=5, with_record_index=True), 6)
  assert_same(a, take(make(data_dir, seed=5, with_record_index=True), 6))
  b = take(make(data_dir, seed=6, with_record_index=True), 6)
  assert any(not np.array_equal(x['source'], y['source']) for x, y in zip(a, b))


def test_every_clip_once_per_epoch(data_dir):
  batches = take(make(data_dir, seed=2, global_batch_size=2, with_record_index=True), 10)
  records = np.concatenate([b['record'] for b in batches])
  assert sorted(records[:10]) == list(range(10)) and sorted(records[10:]) == list(range(10))
  assert not np.array_equal(records[:10], records[10:])  # reshuffled each epoch


def test_workers_give_the_same_batches(data_dir):
  expected = take(make(data_dir, seed=3, with_record_index=True), 4)
  assert_same(take(make(data_dir, seed=3, with_record_index=True, worker_count=2), 4), expected)


@pytest.mark.parametrize('workers', [0, 2])
def test_restored_iterator_continues_exactly(data_dir, tmp_path, workers):
  def fresh():
    return iter(make(data_dir, seed=4, with_record_index=True, worker_count=workers))
  it = fresh()
  take(it, 3)
  manager = ocp.CheckpointManager(
      tmp_path, options=ocp.CheckpointManagerOptions(enable_async_checkpointing=False))
  manager.save(3, args=ocp.args.Composite(state=ocp.args.StandardSave({'w': np.arange(3.0)}),
                                          **{checkpointing.DATA_ITEM:
                                             checkpointing.grain_save_args(it)}))
  manager.wait_until_finished()
  expected = take(it, 4)
  restored_it = fresh()
  restored = manager.restore(3, args=ocp.args.Composite(
      state=ocp.args.StandardRestore({'w': np.zeros(3)}),
      **{checkpointing.DATA_ITEM: checkpointing.grain_restore_args(restored_it)}))
  np.testing.assert_array_equal(restored.state['w'], np.arange(3.0))
  assert_same(take(restored_it, 4), expected)


def test_processes_read_disjoint_shards(data_dir):
  seen = []
  for index in range(2):
    options = grain.sharding.ShardOptions(shard_index=index, shard_count=2, drop_remainder=True)
    batches = take(make(data_dir, seed=0, global_batch_size=4, shard_options=options,
                        num_epochs=1, with_record_index=True), 2)
    assert all(b['source'].shape[0] == 2 for b in batches)  # per-process batch = global / 2
    seen.append(set(np.concatenate([b['record'] for b in batches]).tolist()))
  assert not seen[0] & seen[1] and len(seen[0]) == len(seen[1]) == 4


def test_id_sampling_gives_one_pair_per_identity(data_dir):
  split = index_lib.load_split(data_dir, 'train')
  batches = take(make(data_dir, seed=0, global_batch_size=5, id_sampling=True,
                      with_record_index=True), 4)
  for b in batches:  # each batch is one epoch: every identity once
    ids = split.record_identity[b['record']]
    assert sorted(ids) == list(range(5))
  records = np.concatenate([b['record'] for b in batches])
  assert len(set(records.tolist())) > 5  # different clips of an identity get picked


def test_config_builds_the_same_dataset(data_dir):
  config = pipeline.data_config()
  config.data_dir = str(data_dir)
  config.worker_count = 0
  ds = pipeline.dataset_from_config(config, global_batch_size=4, seed=9,
                                    shard_options=grain.sharding.NoSharding())
  assert_same(take(ds, 2), take(make(data_dir, seed=9), 2))


def test_batch_larger_than_data_is_refused(data_dir):
  with pytest.raises(ValueError, match='cannot fill a batch'):
    make(data_dir, global_batch_size=64)


def test_color_jitter_matches_pil_and_is_shared_by_the_pair():
  rng = np.random.default_rng(0)
  frames = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
  same = augment.color_jitter(frames, np.random.default_rng(1), 0, 0, 0, 0)
  np.testing.assert_array_equal(same[0], frames[0])
  bright = augment.color_jitter(frames, np.random.default_rng(1), brightness=0.5, contrast=0,
                                saturation=0, hue=0)
  factor = np.random.default_rng(1).uniform(0.5, 1.5)
  for got, frame in zip(bright, frames):
    np.testing.assert_array_equal(
        got, np.asarray(ImageEnhance.Brightness(Image.fromarray(frame)).enhance(factor)))
  # a full turn of hue is the identity up to HSV rounding
  gray = np.full((4, 4, 3), 128, np.uint8)
  np.testing.assert_array_equal(np.asarray(augment.adjust_hue(Image.fromarray(gray), 0.3)), gray)


def test_time_flip_swaps_the_pair():
  pair = [np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8)]
  flipped = [augment.random_flip(pair, np.random.default_rng(s), time_flip=True)
             for s in range(20)]
  assert any(f[0][0, 0, 0] == 1 for f in flipped) and any(f[0][0, 0, 0] == 0 for f in flipped)
  mirrored = augment.random_flip([np.arange(6, dtype=np.uint8).reshape(1, 2, 3)],
                                 np.random.default_rng(0), horizontal_flip=True)
  assert mirrored[0].shape == (1, 2, 3)
