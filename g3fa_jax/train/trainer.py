"""The training loop: input, jitted sharded step, checkpoints, metrics, image summaries.

  state = trainer.train(config, workdir)

Resumes from the latest checkpoint in `workdir/checkpoints` when there is one (same step, RNG
and data position); otherwise starts from fresh weights. Stops with `NonFiniteError` naming the
step when a loss or gradient is not finite, keeping the last good checkpoint.

Stopping and failing safely:
- SIGTERM / SIGINT (or jax's multi-host preemption notice): every process stops after the same
  step, writes its checkpoint and returns normally (`g3fa_jax.train.preemption`);
- a workdir that cannot be written (or has no room for one checkpoint) is refused before the
  networks are built or compiled (`checkpointing.UnwritableWorkdirError`);
- a checkpoint that cannot be written stops training with `checkpointing.CheckpointWriteError`
  (step, path, free space), keeping the previous checkpoint;
- bad records in the shards are skipped and counted, up to `data.max_bad_fraction`
  (`input_pipeline.BadRecordMonitor`).
"""

from __future__ import annotations

import functools
import logging as pylogging
import os
import signal
import time
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np
from absl import logging

from g3fa_jax import losses as losses_lib
from g3fa_jax.ops import run_once
from g3fa_jax.train import checkpointing
from g3fa_jax.train import input_pipeline
from g3fa_jax.train import optim
from g3fa_jax.train import preemption
from g3fa_jax.train import pretrained
from g3fa_jax.train import sharding
from g3fa_jax.train import state as state_lib
from g3fa_jax.train import step as step_lib
from g3fa_jax.train import writers
from g3fa_jax.train.state import TrainState

SUMMARY_COLUMNS = ('source', 'driving', 'generated', 'deformed', 'occlusion', 'depth', 'normal')
MAX_SUMMARY_ROWS = 4


class NonFiniteError(FloatingPointError):
  """A loss or gradient became NaN or infinite."""


def schedule_lengths(config: ml_collections.ConfigDict, num_examples: int) -> tuple[int, int]:
  """(steps_per_epoch, num_train_steps) from the config, or from the training set's size."""
  train = config.train
  steps_per_epoch = int(train.steps_per_epoch)
  if steps_per_epoch <= 0:
    steps_per_epoch = num_examples // int(train.batch_size)
    if steps_per_epoch <= 0:
      raise ValueError(f'{num_examples} training pairs per epoch cannot fill one batch of '
                       f'{train.batch_size}')
  num_train_steps = int(train.num_train_steps)
  if num_train_steps <= 0:
    num_train_steps = int(train.num_epochs) * steps_per_epoch
  return steps_per_epoch, num_train_steps


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Fails early, with the field's name, on settings the step cannot run."""
  step_lib.StepSettings.from_config(config)
  smallest = int(config.image_size * min(config.train.scales))
  maps = losses_lib.feature_maps_needed(config.train.loss_weights.perceptual)
  # relu{n}_1 of VGG19 comes after n - 1 halvings.
  needed = 2 ** (maps - 1) if maps else 1
  if smallest < needed:
    raise ValueError(f'config.train.scales={list(config.train.scales)}: the {smallest}x{smallest} '
                     f'pyramid level of {config.image_size}x{config.image_size} frames is too '
                     f'small for VGG19 (relu{maps}_1 needs {needed}x{needed}); drop the smallest '
                     'scales')


class Progress:
  """Steps/s, seconds per step and ETA, logged and written as scalars every `every` steps."""

  def __init__(self, writer, num_train_steps: int, every: int, start_step: int):
    self.writer = writer
    self.num_train_steps = num_train_steps
    self.every = max(1, every)
    self.last_step = start_step
    self.last_time = time.monotonic()

  def __call__(self, step: int) -> None:
    if step % self.every and step != self.num_train_steps:
      return
    now = time.monotonic()
    if step == self.last_step:
      return
    steps_per_sec = (step - self.last_step) / max(now - self.last_time, 1e-9)
    eta = (self.num_train_steps - step) / steps_per_sec
    logging.info('step %d/%d (%.1f%%): %.3g steps/s, %.3g s/step, ETA %s', step,
                 self.num_train_steps, 100 * step / self.num_train_steps, steps_per_sec,
                 1 / steps_per_sec, _format_seconds(eta))
    self.writer.write_scalars(step, {'steps_per_sec': steps_per_sec})
    self.last_step, self.last_time = step, now


def _format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  days, seconds = divmod(seconds, 86400)
  hours, seconds = divmod(seconds, 3600)
  minutes, seconds = divmod(seconds, 60)
  if days:
    return f'{days}d{hours:02d}h{minutes:02d}m'
  if hours:
    return f'{hours}h{minutes:02d}m'
  return f'{minutes}m{seconds:02d}s'


def summary_grid(images: dict[str, np.ndarray]) -> np.ndarray:
  """One (1, rows*H, cols*W, 3) image: a row per sample, columns in `SUMMARY_COLUMNS` order."""
  columns = [images[k] for k in SUMMARY_COLUMNS if k in images]
  rows = np.concatenate(columns, axis=2)  # (N, H, cols*W, 3)
  return rows.reshape((1, -1) + rows.shape[2:])


def _mean_metrics(history: list[dict[str, Any]]) -> dict[str, float]:
  fetched = jax.device_get(history)
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0] if k != 'finite'}


class _FiniteGuard:
  """Checks each step's `finite` flag one step late, so the host never waits on the device."""

  def __init__(self, checkpoints: checkpointing.CheckpointWriter):
    self.checkpoints = checkpoints
    self.pending: Optional[tuple[int, Any]] = None

  def push(self, step: int, metrics: dict[str, Any]) -> None:
    previous, self.pending = self.pending, (step, metrics)
    if previous is not None:
      self._check(*previous)

  def flush(self) -> None:
    if self.pending is not None:
      self._check(*self.pending)
      self.pending = None

  def _check(self, step: int, metrics: dict[str, Any]) -> None:
    if float(jax.device_get(metrics['finite'])) == 1.0:
      return
    values = {k: float(v) for k, v in jax.device_get(metrics).items() if k != 'finite'}
    bad = sorted(k for k, v in values.items() if not np.isfinite(v))
    self.checkpoints.wait()
    last = self.checkpoints.last_complete()
    where = (f'the last good checkpoint is step {last} in {self.checkpoints.directory}'
             if last is not None else 'no checkpoint was written')
    raise NonFiniteError(f'step {step}: non-finite {", ".join(bad)} ({values}); training stopped '
                         f'and {where}')


def quiet_library_logs() -> None:
  """Drops orbax's per-file INFO lines from the absl log (its warnings and errors stay)."""
  class _Filter(pylogging.Filter):
    def filter(self, record: pylogging.LogRecord) -> bool:
      return record.levelno >= pylogging.WARNING or f'{os.sep}orbax{os.sep}' not in record.pathname
  logging.get_absl_handler().addFilter(_Filter())


def train(config: ml_collections.ConfigDict, workdir: str, *,
          writer: Optional[Any] = None,
          on_checkpoint: Optional[Callable[[int, TrainState], None]] = None,
          initialise: Optional[Callable[[TrainState], TrainState]] = None) -> TrainState:
  """Trains (or resumes) to `num_train_steps` and returns the final state.

  Args:
    config: a run config (`configs/vox.py`).
    workdir: checkpoints go to `workdir/checkpoints`, TensorBoard files to `workdir/tensorboard`.
    writer: a clu `MetricWriter` to use instead of log lines + TensorBoard (closed at the end).
    on_checkpoint: called as on_checkpoint(step, state) after each checkpoint is written (e.g. a
      held-out evaluation for a learning curve); it must not change the state.
    initialise: applied to a freshly initialised state (not to a restored one), e.g. to start
      from pretrained networks (`g3fa_jax.demo.motion_warmup.into_state`).
  """
  validate_config(config)
  # The workdir and the pretrained inputs first: they fail in seconds, not after compilation.
  checkpointing.check_workdir(workdir)
  frozen_host = pretrained.frozen_variables(config)

  mesh = sharding.make_mesh()
  global_batch_size = int(config.train.batch_size)
  sharding.check_batch_size(global_batch_size, mesh)
  train_input = input_pipeline.make_train_input(
      config, global_batch_size,
      with_landmarks=bool(config.train.loss_weights.get('landmarks', 0)))
  steps_per_epoch, num_train_steps = schedule_lengths(config, train_input.num_examples)
  logging.info('%d device(s) on %d process(es); global batch %d; %d steps per epoch, %d steps',
               jax.device_count(), jax.process_count(), global_batch_size, steps_per_epoch,
               num_train_steps)

  optimizers = optim.make_optimizers(config, steps_per_epoch)
  nets = step_lib.Networks.from_config(config)
  settings = step_lib.StepSettings.from_config(config)
  replicated = sharding.replicated(mesh)
  batch_sharding = sharding.batch_sharded(mesh)
  frozen = sharding.replicate(frozen_host, mesh)

  init_fn = jax.jit(functools.partial(state_lib.init_train_state, config, optimizers),
                    out_shardings=replicated)
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(init_fn, rng)
  checkpointing.check_room(workdir, _array_bytes(abstract), int(config.train.keep_checkpoints))
  manager = checkpointing.make_manager(workdir, config)
  checkpoints = checkpointing.CheckpointWriter(manager, config)
  if manager.latest_step() is not None:
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract)
    state, data_state, meta = checkpointing.restore(manager, abstract,
                                                    data_args=train_input.restore_args())
    if data_state is not None:
      train_input.load(data_state)
    changed = checkpointing.config_differences(meta['config'], config.to_dict())
    if changed:
      logging.warning('Resuming with a config that differs from the checkpoint\'s: %s',
                      '; '.join(changed))
  else:
    state = run_once.compile_for_one_call(init_fn, rng)(rng)
    if initialise is not None:
      state = jax.device_put(initialise(state), replicated)
  initial_step = int(jax.device_get(state.step))

  train_step = jax.jit(
      functools.partial(step_lib.train_step, nets=nets, settings=settings, optimizers=optimizers),
      in_shardings=(replicated, batch_sharding, replicated),
      out_shardings=(replicated, replicated), donate_argnums=(0,))
  summary_fn = jax.jit(
      lambda s, b, f: {k: v[:MAX_SUMMARY_ROWS] for k, v in step_lib.summary_outputs(
          s, b, f, nets=nets, settings=settings).items()},
      in_shardings=(replicated, batch_sharding, replicated), out_shardings=replicated)

  if writer is None:
    writer = writers.create_writer(os.path.join(workdir, 'tensorboard'))
  if initial_step == 0:
    writer.write_hparams({k: str(v) for k, v in _flat(config.to_dict()).items()})
  train_cfg = config.train
  progress = Progress(writer, num_train_steps, int(train_cfg.log_every_steps), initial_step)
  guard = _FiniteGuard(checkpoints)
  stop = preemption.StopRequest(checkpoints.directory)
  bad_records = input_pipeline.BadRecordMonitor(
      float(config.data.get('max_bad_fraction', 0.01)), str(config.data.get('data_dir', '')),
      active=train_input.skips_bad)
  history: list[dict[str, Any]] = []
  logging.info('Training from step %d to %d', initial_step, num_train_steps)
  try:
    with stop.installed():
      for step in range(initial_step + 1, num_train_steps + 1):
        local = bad_records.take(next(train_input.iterator))
        _check_batch(local, config, global_batch_size)
        batch = sharding.global_batch(local, mesh)
        state, metrics = train_step(state, batch, frozen)
        guard.push(step, metrics)
        history.append(metrics)
        progress(step)
        if step % int(train_cfg.log_every_steps) == 0 or step == num_train_steps:
          scalars = _mean_metrics(history)
          scalars['learning_rate'] = float(optim.learning_rate_schedule(
              train_cfg.lr_generator, train_cfg.epoch_milestones, steps_per_epoch)(step - 1))
          scalars.update(bad_records.check(step))
          writer.write_scalars(step, scalars)
          history = []
        every = int(train_cfg.image_summary_every_steps)
        if every > 0 and (step % every == 0 or step == 1):
          images = jax.device_get(summary_fn(state, batch, frozen))
          writer.write_images(step, {'samples': summary_grid(images)})
        checkpoints.poll()
        stopping = stop.reached(step)
        if stopping or step % int(train_cfg.checkpoint_every_steps) == 0 or (
            step == num_train_steps):
          guard.flush()
          with stop.saving(step):
            checkpoints.save(state, train_input.save_args())
            if stopping:
              checkpoints.wait()
          if on_checkpoint is not None and not stopping:
            on_checkpoint(step, state)
        if stopping:
          logging.warning('Stopped by %s after step %d of %d: checkpoint written to %s; run the '
                          'same command to resume', _signal_names(stop.signals), step,
                          num_train_steps, checkpoints.directory / str(step))
          break
      guard.flush()
      checkpoints.wait()
  finally:
    checkpoints.close()
    writer.flush()
    writer.close()
  return state


def _signal_names(signals: list[int]) -> str:
  """'SIGTERM' from the signals received; 'a preemption notice' when jax's notifier caught it."""
  return signal.Signals(signals[0]).name if signals else 'a preemption notice'


def _array_bytes(tree: Any) -> int:
  """Bytes of the arrays (or shape-dtype structs) of a pytree: a checkpoint's size."""
  return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree))


def _check_batch(local: dict[str, np.ndarray], config: ml_collections.ConfigDict,
                 global_batch_size: int) -> None:
  expected = (global_batch_size // jax.process_count(), config.image_size, config.image_size, 3)
  for key in ('source', 'driving'):
    if key not in local or tuple(local[key].shape) != expected:
      got = tuple(local[key].shape) if key in local else 'nothing'
      raise ValueError(f'input batch {key!r}: expected {expected} (per-process batch, '
                       f'config.image_size), got {got}')


def _flat(tree: dict, prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out
