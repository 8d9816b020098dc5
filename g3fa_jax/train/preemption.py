"""Stopping on request: SIGTERM / SIGINT and jax's multi-host preemption notice.

  stop = preemption.StopRequest(checkpoint_dir)
  with stop.installed():
    for step in ...:
      state = train_step(...)
      if stop.reached(step):   # every process returns True at the same step
        with stop.saving(step):
          ...write the checkpoint of `step`...
        break

One process (any number of local devices): the signal handler only sets a flag, which the loop
reads between steps (no device sync). Several processes: jax's preemption sync manager (enabled by
`jax.distributed.initialize`) already owns SIGTERM and the TPU runtime's maintenance notices, and
`multihost_utils.reached_preemption_sync_point(step)` turns the first notice on any process into
the same step on every process; SIGINT is handed to it as a SIGTERM of this process.

A second signal while the stop checkpoint is written: a repeated SIGTERM is logged and ignored
(schedulers and wrapper scripts often send it twice; the save goes on), a SIGINT (Ctrl-C twice)
ends the process at once with status 128 + SIGINT. Orbax writes a step into a temporary folder and
renames it when complete, so either way the last complete checkpoint stays as it was.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import sys
import threading
from typing import Callable, Iterator, Optional

from absl import logging

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def committed_steps(directory: str | os.PathLike) -> list[int]:
  """The steps whose folders under `directory` are complete (orbax renamed them from their
  temporary name); [] when there are none."""
  path = pathlib.Path(directory)
  if not path.is_dir():
    return []
  return sorted(int(p.name) for p in path.iterdir() if p.name.isdigit() and p.is_dir())


def _default_sync_point() -> Optional[Callable[[int], bool]] | str:
  """jax's preemption sync point in a multi-process run, None in a single-process one, or
  'unavailable' (several processes, jax's preemption service off: nobody can agree on a step)."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() == 1:
    return None
  # What `reached_preemption_sync_point` itself looks at; it raises when the service is off.
  from jax._src import distributed  # pylint: disable=g-import-not-at-top
  if distributed.global_state.preemption_sync_manager is None:
    return 'unavailable'
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return multihost_utils.reached_preemption_sync_point


class StopRequest:
  """The stop flag of one training loop, set by signals (see the module doc).

  Attributes:
    signals: the signal numbers received, in order.
    stop_step: the step at which `reached` first returned True (None before).
  """

  def __init__(self, checkpoint_dir: str | os.PathLike,
               sync_point: Optional[Callable[[int], bool]] | str = 'auto'):
    """`sync_point`: step -> bool agreed by every process; 'auto' uses jax's preemption sync point
    in multi-process runs and the local flag otherwise (None: always the local flag)."""
    self.checkpoint_dir = pathlib.Path(checkpoint_dir)
    self.signals: list[int] = []
    self.stop_step: Optional[int] = None
    self._sync_point = _default_sync_point() if sync_point == 'auto' else sync_point
    # Several processes without jax's preemption service: a stop on one process alone would
    # leave the others waiting in a collective, so signals keep their usual effect.
    self.enabled = self._sync_point != 'unavailable'
    if not self.enabled:
      self._sync_point = None
      logging.warning('jax_enable_preemption_service is off in this multi-process run: SIGTERM '
                      'and SIGINT end training without a stop checkpoint')
    self._saving_step: Optional[int] = None
    self._previous: dict[int, object] = {}

  @property
  def requested(self) -> bool:
    """True once a stop signal arrived on this process."""
    return bool(self.signals)

  def reached(self, step: int) -> bool:
    """Whether to stop after `step` (the same answer on every process)."""
    if self.stop_step is None:
      hit = self._sync_point(step) if self._sync_point is not None else self.requested
      if hit:
        self.stop_step = step
    return self.stop_step is not None

  @contextlib.contextmanager
  def installed(self) -> Iterator['StopRequest']:
    """Handles SIGTERM and SIGINT inside the block (main thread only; elsewhere a no-op)."""
    if not self.enabled or threading.current_thread() is not threading.main_thread():
      yield self
      return
    for signum in SIGNALS:
      if signum == signal.SIGTERM and self._sync_point is not None:
        continue  # jax's preemption notifier handles it on every process.
      self._previous[signum] = signal.signal(signum, self._handle)
    try:
      yield self
    finally:
      for signum, handler in self._previous.items():
        signal.signal(signum, handler)
      self._previous = {}

  @contextlib.contextmanager
  def saving(self, step: int) -> Iterator[None]:
    """Marks the stop checkpoint of `step` as being written (what a second signal interrupts)."""
    self._saving_step = step
    try:
      yield
    finally:
      self._saving_step = None

  def _handle(self, signum: int, frame) -> None:
    del frame
    name = signal.Signals(signum).name
    first = not self.signals
    self.signals.append(signum)
    if first:
      logging.warning('%s received: stopping after the current step with a checkpoint '
                      '(a second SIGINT ends at once, without it)', name)
      if self._sync_point is not None:
        # Several processes: jax's notifier spreads it to all of them as a preemption notice.
        os.kill(os.getpid(), signal.SIGTERM)
      return
    if signum != signal.SIGINT:
      logging.warning('%s received again: ignored, the stop checkpoint is still to be written',
                      name)
      return
    steps = committed_steps(self.checkpoint_dir)
    last = (f'the last complete checkpoint is step {steps[-1]} in {self.checkpoint_dir}'
            if steps else f'there is no complete checkpoint in {self.checkpoint_dir}')
    during = (f' while writing step {self._saving_step}' if self._saving_step is not None
              else '')
    # One line straight to stderr and no cleanup: the user asked to stop now, and the save in
    # flight is a temporary folder that the next run removes.
    sys.stderr.write(f'error: second {name}{during}: stopped at once; {last}\n')
    sys.stderr.flush()
    os._exit(128 + signum)  # pylint: disable=protected-access
