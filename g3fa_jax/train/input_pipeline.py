"""The training input: this process's rows of each global batch, and its checkpointable position.

`config.data.name` picks the source:
- 'shards': prepared ArrayRecord shards through grain (`g3fa_jax.data`, `config.data.data_dir`);
  the iterator position is saved per process by grain's orbax handler.
- 'toy': in-memory moving ellipses (`g3fa_jax.data.toy`), a pure function of (seed, step); for
  tests and smoke runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from g3fa_jax import data as data_lib
from g3fa_jax.data import index as index_lib
from g3fa_jax.data import toy
from g3fa_jax.train import checkpointing

SOURCES = ('shards', 'toy')


@dataclasses.dataclass
class TrainInput:
  """iterator: yields {'source', 'driving'} (B / process_count, H, W, 3) float32 in [0, 1].
  num_examples: training pairs per epoch (clips, or identities with id_sampling).
  save_args / restore_args: orbax args of the `data_iterator` checkpoint item.
  load: applies what `restore_args` restored (no-op where orbax restores in place)."""
  iterator: Iterator[dict[str, np.ndarray]]
  num_examples: int
  save_args: Callable[[], Any]
  restore_args: Callable[[], Any]
  load: Callable[[Any], None]


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


def _shards(config: ml_collections.ConfigDict, global_batch_size: int) -> TrainInput:
  data = config.data
  split = index_lib.load_split(data.data_dir, data.split)
  num_examples = len(split.identities) if data.id_sampling else split.num_records
  dataset = data_lib.dataset_from_config(data, global_batch_size=global_batch_size,
                                         seed=config.seed)
  iterator = iter(dataset)
  return TrainInput(
      iterator=iterator, num_examples=num_examples * int(data.get('num_repeats', 1)),
      save_args=lambda: checkpointing.grain_save_args(iterator),
      restore_args=lambda: checkpointing.grain_restore_args(iterator),
      load=lambda _: None)


def make_train_input(config: ml_collections.ConfigDict, global_batch_size: int) -> TrainInput:
  """The configured input for a global batch of `global_batch_size` pairs."""
  name = config.data.name
  if name == 'toy':
    return _toy(config, global_batch_size)
  if name == 'shards':
    return _shards(config, global_batch_size)
  raise ValueError(f'config.data.name={name!r}: use one of {SOURCES}')
