"""Saving the input iterator's position with the training checkpoint (orbax + grain).

Add the iterator as one more item of the step's `ocp.args.Composite`:

  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(train_state), **data_checkpoint.save_args(iterator)))
  ...
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(template), **data_checkpoint.restore_args(iterator)))

grain writes one small JSON per process (`process_<i>-of-<n>.json`: the sampler position and
seed), so every host resumes its own shard exactly where it stopped.
"""

from __future__ import annotations

from typing import Any

import grain

ITEM = 'data_iterator'


def save_args(iterator: grain.DatasetIterator, item: str = ITEM) -> dict[str, Any]:
  """{item: grain's orbax save args for the iterator}."""
  return {item: grain.checkpoint.CheckpointSave(iterator)}


def restore_args(iterator: grain.DatasetIterator, item: str = ITEM) -> dict[str, Any]:
  """{item: grain's orbax restore args}; restoring sets the given iterator's state in place."""
  return {item: grain.checkpoint.CheckpointRestore(iterator)}
