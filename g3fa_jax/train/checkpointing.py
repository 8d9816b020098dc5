"""Training checkpoints in the project's orbax layout (`g3fa_jax/checkpoint.py`).

Each step folder of `WORKDIR/checkpoints` holds
  kp_detector, generator, discriminator, discriminator2, discriminator3:
      that network's variables {'params', 'batch_stats' | 'spectral'}   (what `Animator` restores)
  opt_state:      {network name: its optax Adam state}
  train_state:    {'step', 'rng'}
  data_iterator:  the input iterator's position (grain: one JSON per process)
  config:         JSON {'format', 'format_version', 'items', 'source', 'config': the run config}
                  (`g3fa_jax.checkpoint.metadata`)
so `g3fa_jax.Animator.from_checkpoint(WORKDIR/checkpoints)` opens a training checkpoint, and a
resumed run continues at the exact step, with the same RNG and data order.

The input iterator's position is one more item of the step, saved and restored with the orbax
args of its source (`g3fa_jax.train.input_pipeline`): for grain shards `grain_save_args` /
`grain_restore_args`, which write one small JSON per process (`process_<i>-of-<n>.json`: the
sampler position and seed), so every host resumes its own shard exactly where it stopped.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Optional

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.train import sharding
from g3fa_jax.train import state as state_lib
from g3fa_jax.train.state import TrainState

OPT_STATE_ITEM = 'opt_state'
TRAIN_STATE_ITEM = 'train_state'
DATA_ITEM = 'data_iterator'
SOURCE = 'g3fa-jax training'


def grain_save_args(iterator: grain.DatasetIterator) -> Any:
  """grain's orbax save args for the `data_iterator` item of a grain iterator."""
  return grain.checkpoint.CheckpointSave(iterator)


def grain_restore_args(iterator: grain.DatasetIterator) -> Any:
  """grain's orbax restore args; restoring sets the given iterator's state in place."""
  return grain.checkpoint.CheckpointRestore(iterator)


def checkpoint_dir(workdir: str | os.PathLike) -> pathlib.Path:
  return pathlib.Path(workdir).expanduser().absolute() / 'checkpoints'


def make_manager(workdir: str | os.PathLike, config: ml_collections.ConfigDict
                 ) -> ocp.CheckpointManager:
  """A manager keeping the last `train.keep_checkpoints` steps, async if configured."""
  train = config.train
  options = ocp.CheckpointManagerOptions(
      max_to_keep=int(train.keep_checkpoints), create=True,
      enable_async_checkpointing=bool(train.async_checkpointing))
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def _items(state: TrainState) -> dict[str, Any]:
  items = state_lib.network_items(state)
  items[OPT_STATE_ITEM] = state.opt_state
  items[TRAIN_STATE_ITEM] = {'step': state.step, 'rng': state.rng}
  return items


def save(manager: ocp.CheckpointManager, state: TrainState, config: ml_collections.ConfigDict,
         data_args: Optional[Any] = None) -> None:
  """Starts writing the checkpoint of `state` at its step (returns before it is on disk when
  asynchronous; `manager.wait_until_finished()` waits).

  `data_args`: the orbax save args of the input iterator's position (item `data_iterator`).

  The arrays are written as host (numpy) values, not as sharded device arrays: a checkpoint then
  carries no device topology, so it restores anywhere (resume on another number of devices or
  hosts, open with `Animator` on a laptop).
  """
  step = int(jax.device_get(state.step))
  items = sharding.to_host(_items(state))
  extra = {DATA_ITEM: data_args} if data_args is not None else {}
  meta = ckpt.metadata(sorted(items) + list(extra), config.to_dict(), SOURCE)
  ckpt.save_step(manager, step, items, meta, extra)


def restore(manager: ocp.CheckpointManager, abstract_state: TrainState,
            step: Optional[int] = None, data_args: Optional[Any] = None
            ) -> tuple[TrainState, Any, dict]:
  """The state at `step` (default: the latest) placed like `abstract_state` (shapes, dtypes and
  shardings, e.g. replicated over the mesh), the restored `data_iterator` item (or None) and the
  checkpoint's metadata.

  `data_args`: the orbax restore args of the input iterator's position (used when the checkpoint
  has a `data_iterator` item).
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f'{manager.directory}: no checkpoint to restore')
  meta = ckpt.read_metadata(manager, step)
  abstract_items = _items(abstract_state)
  missing = sorted(set(abstract_items) - set(meta['items']))
  if missing:
    raise ValueError(f'{manager.directory}/{step}: has no {", ".join(missing)}; it cannot resume '
                     'training (a converted checkpoint? start a new workdir and load it instead)')
  args = {name: ocp.args.StandardRestore(tree) for name, tree in abstract_items.items()}
  has_data = DATA_ITEM in meta['items'] and data_args is not None
  if has_data:
    args[DATA_ITEM] = data_args
  restored = manager.restore(step, args=ocp.args.Composite(**args))
  params, collections = {}, {}
  for name in state_lib.TRAINED_NETWORKS:
    params[name], collections[name] = state_lib.split_variables(restored[name])
  state = TrainState(step=restored[TRAIN_STATE_ITEM]['step'], params=params,
                     collections=collections, opt_state=restored[OPT_STATE_ITEM],
                     rng=restored[TRAIN_STATE_ITEM]['rng'])
  data_state = restored[DATA_ITEM] if has_data else None
  logging.info('Restored step %d from %s', step, manager.directory)
  return state, data_state, meta


def config_differences(saved: dict, current: dict, prefix: str = '') -> list[str]:
  """Dotted names of the fields that differ between two config dicts."""
  out = []
  for key in sorted(set(saved) | set(current)):
    a, b = saved.get(key, '<absent>'), current.get(key, '<absent>')
    if isinstance(a, dict) and isinstance(b, dict):
      out.extend(config_differences(a, b, f'{prefix}{key}.'))
    elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
                         and list(a) == list(b)):
      out.append(f'{prefix}{key}: {a!r} -> {b!r}')
  return out
