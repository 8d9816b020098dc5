"""The training input: this process's rows of each global batch, and its checkpointable position.

`config.data.name` picks the source:
- 'shards': prepared ArrayRecord shards through grain (`g3fa_jax.data`, `config.data.data_dir`);
  the iterator position is saved per process by grain's orbax handler.
- 'toy': in-memory moving ellipses (`g3fa_jax.data.toy`), a pure function of (seed, step); for
  tests and smoke runs.

Shards skip the pairs they cannot make (`g3fa_jax.data.pairs`, `skip_bad`); `BadRecordMonitor`
counts them, logs each one and stops training past `data.max_bad_fraction`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from g3fa_jax import data as data_lib
from g3fa_jax.data import index as index_lib
from g3fa_jax.data import pairs
from g3fa_jax.data import toy
from g3fa_jax.synthetic import landmarks as landmarks_lib
from g3fa_jax.train import checkpointing

SOURCES = ('shards', 'toy')


@dataclasses.dataclass
class TrainInput:
  """iterator: yields {'source', 'driving'} (B / process_count, H, W, 3) float32 in [0, 1].
  num_examples: training pairs per epoch (clips, or identities with id_sampling).
  save_args / restore_args: orbax args of the `data_iterator` checkpoint item.
  load: applies what `restore_args` restored (no-op where orbax restores in place).
  skips_bad: batches carry `pairs.BAD_COUNT` / `pairs.BAD_NOTES` (see `BadRecordMonitor`)."""
  iterator: Iterator[dict[str, np.ndarray]]
  num_examples: int
  save_args: Callable[[], Any]
  restore_args: Callable[[], Any]
  load: Callable[[Any], None]
  skips_bad: bool = False


def _toy(config: ml_collections.ConfigDict, global_batch_size: int) -> TrainInput:
  pairs = toy.ToyPairs(
      seed=config.seed, num_videos=config.data.toy_num_videos,
      image_size=config.image_size, batch_size=global_batch_size,
      process_index=jax.process_index(), process_count=jax.process_count(),
      nan_step=int(config.data.get('toy_nan_step', -1)))
  return TrainInput(iterator=pairs, num_examples=len(pairs),
                    save_args=lambda: ocp.args.JsonSave(pairs.get_state()),
                    restore_args=ocp.args.JsonRestore,
                    load=pairs.set_state)


def _shards(config: ml_collections.ConfigDict, global_batch_size: int,
            with_landmarks: bool = False) -> TrainInput:
  data = config.data
  split = index_lib.load_split(data.data_dir, data.split)
  num_examples = len(split.identities) if data.id_sampling else split.num_records
  dataset = data_lib.dataset_from_config(data, global_batch_size=global_batch_size,
                                         seed=config.seed, skip_bad=True,
                                         landmarks_of=(landmarks_lib.pair_landmarks
                                                       if with_landmarks else None))
  iterator = iter(dataset)
  return TrainInput(
      iterator=iterator, num_examples=num_examples * int(data.get('num_repeats', 1)),
      save_args=lambda: checkpointing.grain_save_args(iterator),
      restore_args=lambda: checkpointing.grain_restore_args(iterator),
      load=lambda _: None, skips_bad=True)


def make_train_input(config: ml_collections.ConfigDict, global_batch_size: int,
                     with_landmarks: bool = False) -> TrainInput:
  """The configured input for a global batch of `global_batch_size` pairs; `with_landmarks`
  adds the synthetic heads' landmarks ('source_landmarks', 'driving_landmarks'; shards of
  synthetic clips only, see `g3fa_jax.data.pipeline.make_pair_dataset`)."""
  name = config.data.name
  if name == 'toy':
    if with_landmarks:
      raise ValueError('config.data.name=toy has no landmarks: they come with the synthetic '
                       "heads' shards (data.name='shards')")
    return _toy(config, global_batch_size)
  if name == 'shards':
    return _shards(config, global_batch_size, with_landmarks)
  raise ValueError(f'config.data.name={name!r}: use one of {SOURCES}')


class BadDataError(RuntimeError):
  """More than `data.max_bad_fraction` of the pairs drawn from the shards failed."""


def bad_fraction_exceeded(bad: int, drawn: int, max_fraction: float) -> bool:
  """Whether `bad` failed draws out of `drawn` is past the limit.

  Judged only once `drawn` >= 1 / max_fraction, so that one bad pair early in a run cannot stop
  it (with max_fraction 0, any bad pair does).
  """
  if bad == 0:
    return False
  if max_fraction <= 0:
    return True
  return drawn >= math.ceil(1 / max_fraction) and bad > max_fraction * drawn


class BadRecordMonitor:
  """Counts, logs and limits the pairs the input skipped (shards with `skip_bad`).

  `take(batch)` removes the bookkeeping columns from each host batch and logs one warning per
  skipped draw (shard, record, clip, frame); `check(step)`, at log steps, returns the scalars
  'bad_pairs' (failed draws so far, since this process started) and 'bad_fraction' (of all
  draws) and raises `BadDataError` past `max_fraction`. With several processes the counts are
  summed over all of them there (one small all-gather per log step), so all stop together.
  """

  def __init__(self, max_fraction: float, data_dir: str = '', active: bool = True):
    self.max_fraction = float(max_fraction)
    self.data_dir = data_dir
    self.active = active
    self.bad = 0
    self.drawn = 0

  def take(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`batch` without `pairs.BAD_COUNT` / `pairs.BAD_NOTES`, after counting and logging them."""
    if pairs.BAD_COUNT not in batch:
      return batch
    batch = dict(batch)
    counts = np.asarray(batch.pop(pairs.BAD_COUNT))
    notes = batch.pop(pairs.BAD_NOTES)
    failed = int(counts.sum())
    self.bad += failed
    self.drawn += counts.size + failed
    if failed:
      for note in np.asarray(notes).reshape(-1):
        for line in str(note).splitlines():
          logging.warning('bad record skipped: %s', line)
    return batch

  def check(self, step: int) -> dict[str, float]:
    """{'bad_pairs', 'bad_fraction'} over all processes; raises `BadDataError` past the limit."""
    if not self.active:
      return {}
    bad, drawn = self.bad, self.drawn
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      totals = np.asarray(multihost_utils.process_allgather(np.asarray([bad, drawn], np.int64)))
      bad, drawn = (int(x) for x in totals.reshape(-1, 2).sum(0))
    fraction = bad / drawn if drawn else 0.0
    if bad_fraction_exceeded(bad, drawn, self.max_fraction):
      where = f' in {self.data_dir}' if self.data_dir else ''
      raise BadDataError(
          f'step {step}: {bad} of {drawn} pairs drawn from the shards{where} failed '
          f'({fraction:.1%}), more than data.max_bad_fraction={self.max_fraction:g}; training '
          'stopped (the "bad record skipped" lines name them): repair or re-prepare those '
          'shards, or raise data.max_bad_fraction')
    return {'bad_pairs': float(bad), 'bad_fraction': fraction}
