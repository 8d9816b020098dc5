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

Writing can fail (a full disk, a quota, a lost mount): `CheckpointWriter` reports the step that
failed in one line with its path and the free space (`CheckpointWriteError`), and the previous
checkpoint stays as it was (orbax writes into `<step>.orbax-checkpoint-tmp` and renames it only
when complete; old steps are deleted only after a new one is complete). The trainer refuses a
workdir that cannot be written (`check_workdir`), or has no room for one checkpoint
(`check_room`), before anything is compiled.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import uuid
from typing import Any, Optional

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.train import preemption
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


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written; the message names the step, path and free space."""


class UnwritableWorkdirError(OSError):
  """The workdir cannot hold checkpoints (not writable, or too little free space)."""


def format_bytes(n: float) -> str:
  """1536 -> '1.5 KiB'."""
  for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
    if abs(n) < 1024 or unit == 'TiB':
      return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
    n /= 1024
  raise AssertionError('unreachable')


def free_space(path: str | os.PathLike) -> Optional[int]:
  """Free bytes on the filesystem of `path` (or of its nearest existing parent); None if unknown
  (e.g. a gs:// path)."""
  p = pathlib.Path(path)
  while not p.exists() and p != p.parent:
    p = p.parent
  try:
    return shutil.disk_usage(p).free
  except OSError:
    return None


def _is_remote(path: str | os.PathLike) -> bool:
  return '://' in str(path)


def check_workdir(workdir: str | os.PathLike) -> None:
  """Raises `UnwritableWorkdirError` unless a file can be written and removed in
  `workdir/checkpoints` (created if needed). Remote paths (gs://, ...) are not checked."""
  if _is_remote(workdir):
    return
  directory = checkpoint_dir(workdir)
  probe = directory / f'.write-check-{uuid.uuid4().hex}'
  try:
    directory.mkdir(parents=True, exist_ok=True)
    with open(probe, 'wb') as f:
      f.write(b'g3fa-jax write check')
      f.flush()
      os.fsync(f.fileno())
    probe.unlink()
  except OSError as e:
    raise UnwritableWorkdirError(
        f'workdir {pathlib.Path(workdir).absolute()} cannot be written ({_cause(e)} at '
        f'{e.filename or probe}): choose another --workdir or fix its permissions; nothing was '
        'run') from e


def check_room(workdir: str | os.PathLike, checkpoint_bytes: int, keep: int) -> None:
  """Raises `UnwritableWorkdirError` when the workdir's filesystem has no room for one checkpoint
  of `checkpoint_bytes`; logs a warning below room for `keep` + 1 of them (the kept ones and the
  one being written)."""
  directory = checkpoint_dir(workdir)
  free = None if _is_remote(workdir) else free_space(directory)
  if free is None:
    return
  if free < checkpoint_bytes:
    raise UnwritableWorkdirError(
        f'workdir {pathlib.Path(workdir).absolute()}: {format_bytes(free)} free, one checkpoint '
        f'needs about {format_bytes(checkpoint_bytes)}: free some space or choose another '
        '--workdir; nothing was run')
  if free < (keep + 1) * checkpoint_bytes:
    logging.warning('%s: %s free, room for fewer than train.keep_checkpoints + 1 = %d '
                    'checkpoints of %s', directory, format_bytes(free), keep + 1,
                    format_bytes(checkpoint_bytes))


def _cause(error: BaseException) -> str:
  """The short reason of a write error: the OS error when there is one (also inside tensorstore's
  messages, `os_error_code=28`), else the first line of the message."""
  seen = error
  while seen is not None:
    if isinstance(seen, OSError) and seen.strerror:
      return f'{seen.strerror} [errno {seen.errno}]'
    seen = seen.__cause__ or seen.__context__
  match = re.search(r"os_error_code='?(\d+)", str(error))
  if match:
    code = int(match.group(1))
    return f'{os.strerror(code)} [errno {code}]'
  lines = str(error).strip().splitlines()
  return (lines[0][:300] if lines else '') or type(error).__name__


def make_manager(workdir: str | os.PathLike, config: ml_collections.ConfigDict
                 ) -> ocp.CheckpointManager:
  """A manager keeping the last `train.keep_checkpoints` steps, async if configured.

  Temporary folders of saves that never completed (a kill, a failed write) are removed when it
  opens.
  """
  train = config.train
  options = ocp.CheckpointManagerOptions(
      max_to_keep=int(train.keep_checkpoints), create=True, cleanup_tmp_directories=True,
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


class CheckpointWriter:
  """Starts checkpoint saves and reports the first one that fails, as `CheckpointWriteError`.

  An asynchronous save fails in the background; orbax raises its error at the next save or wait,
  so `save`, `wait` and `poll` (called every step) turn it into one line about the step that was
  being written.
  """

  def __init__(self, manager: ocp.CheckpointManager, config: ml_collections.ConfigDict):
    self.manager = manager
    self.config = config
    self.pending: Optional[int] = None

  @property
  def directory(self) -> pathlib.Path:
    return pathlib.Path(str(self.manager.directory))

  def last_complete(self) -> Optional[int]:
    """The latest step whose folder is complete on disk (None if none)."""
    steps = preemption.committed_steps(self.directory)
    return steps[-1] if steps else None

  def save(self, state: TrainState, data_args: Optional[Any] = None) -> int:
    """Waits for the previous save, then starts writing `state`'s step; returns that step."""
    self.wait()
    step = int(jax.device_get(state.step))
    self.pending = step
    try:
      save(self.manager, state, self.config, data_args=data_args)
    except Exception as e:  # pylint: disable=broad-except
      self.pending = None
      raise self._error(step, e) from e
    return step

  def wait(self) -> None:
    """Blocks until the save in flight is on disk; raises `CheckpointWriteError` if it failed."""
    if self.pending is None:
      return
    step, self.pending = self.pending, None
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(step, e) from e

  def poll(self) -> None:
    """Reports a failed save as soon as its background write has ended (one host-side check, no
    wait), instead of at the next save. Single-process runs only: processes could see the end
    at different steps, and one stopping alone would leave the others in a collective."""
    if (self.pending is not None and jax.process_count() == 1
        and not self.manager.is_saving_in_progress()):
      self.wait()

  def close(self) -> None:
    """Waits for the save in flight and closes the manager. Used on the way out of a failure:
    an error of that save is logged, not raised (the first error is the one to report)."""
    try:
      self.wait()
    except CheckpointWriteError as e:
      logging.error('%s', e)
    try:
      self.manager.close()
    except Exception as e:  # pylint: disable=broad-except
      logging.error('closing the checkpoint manager of %s: %s', self.directory, _cause(e))

  def _error(self, step: int, error: BaseException) -> CheckpointWriteError:
    free = free_space(self.directory)
    room = f'{format_bytes(free)} free there' if free is not None else 'free space unknown'
    last = self.last_complete()
    kept = (f'the last good checkpoint, step {last}, is intact' if last is not None
            else 'no earlier checkpoint exists')
    return CheckpointWriteError(
        f'checkpoint of step {step} could not be written to {self.directory / str(step)} '
        f'({_cause(error)}; {room}); {kept}; training stopped: make room or choose another '
        '--workdir, then rerun to resume')


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
