"""Orbax checkpoints of model variables plus the config that built them.

One layout serves every writer and reader: a `CheckpointManager` directory whose step folders hold
one pytree item per network (`kp_detector`, `generator`, `discriminator`, `discriminator2`,
`discriminator3`, `unsup3d`, ...) and a JSON item `config` (the run config, so a checkpoint restores
without knowing how it was made). Converters write step = the official epoch; training writes more
items (optimiser states, data iterator) into the same folders.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from g3fa_jax.convert.state_dict import CheckpointMismatchError

FORMAT = 'g3fa-jax'
FORMAT_VERSION = 1
CONFIG_ITEM = 'config'


def save_checkpoint(directory: str | os.PathLike, step: int, items: Mapping[str, Any],
                    config: Mapping[str, Any], *, source: str = '') -> pathlib.Path:
  """Writes `items` (name -> variables pytree) and `config` as step `step` under `directory`.

  Orbax writes to a temporary folder and renames it when complete, so an interrupted save never
  leaves a readable half checkpoint. Returns the step folder.
  """
  directory = pathlib.Path(directory).absolute()
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(enable_async_checkpointing=False))
  meta = {'format': FORMAT, 'format_version': FORMAT_VERSION, 'items': sorted(items),
          'source': source, 'config': dict(config)}
  args = {name: ocp.args.StandardSave(tree) for name, tree in items.items()}
  args[CONFIG_ITEM] = ocp.args.JsonSave(meta)
  manager.save(step, args=ocp.args.Composite(**args), force=True)
  manager.wait_until_finished()
  manager.close()
  return directory / str(step)


def _resolve(directory: str | os.PathLike, step: int | None) -> tuple[pathlib.Path, int]:
  """Accepts a manager root (latest or given step) or one step folder."""
  path = pathlib.Path(directory).expanduser().absolute()
  if not path.exists():
    raise FileNotFoundError(f'{path}: no such checkpoint directory')
  if (path / CONFIG_ITEM).is_dir() and path.name.isdigit():
    if step is not None and step != int(path.name):
      raise ValueError(f'{path} is the checkpoint of step {path.name}, not step {step}')
    return path.parent, int(path.name)
  steps = sorted(int(p.name) for p in path.iterdir()
                 if p.is_dir() and p.name.isdigit() and (p / CONFIG_ITEM).is_dir())
  if not steps:
    raise FileNotFoundError(
        f'{path}: not a g3fa-jax checkpoint (no step folder with a `{CONFIG_ITEM}` item). '
        'Convert an official .pth with `python -m g3fa_jax.convert official ...` or train one.')
  if step is None:
    return path, steps[-1]
  if step not in steps:
    raise FileNotFoundError(f'{path}: no checkpoint for step {step} (steps: {steps})')
  return path, step


def read_config(directory: str | os.PathLike, step: int | None = None) -> tuple[dict, int]:
  """The metadata JSON (`format`, `items`, `source`, `config`) of a checkpoint, and its step."""
  root, step = _resolve(directory, step)
  with ocp.CheckpointManager(root, options=ocp.CheckpointManagerOptions(read_only=True)) as manager:
    meta = manager.restore(step, args=ocp.args.Composite(
        **{CONFIG_ITEM: ocp.args.JsonRestore()}))[CONFIG_ITEM]
  if not isinstance(meta, dict) or meta.get('format') != FORMAT:
    raise ValueError(f'{root / str(step)}: not a {FORMAT} checkpoint')
  return meta, step


def restore_items(directory: str | os.PathLike, names: Sequence[str], step: int | None = None,
                  ) -> tuple[dict[str, Any], dict]:
  """Restores the named items as numpy pytrees, with the checkpoint's metadata.

  Raises a clear error naming the checkpoint when an item is absent (e.g. asking an Unsup3D
  checkpoint for a generator).
  """
  meta, step = read_config(directory, step)
  root, _ = _resolve(directory, step)
  absent = [name for name in names if name not in meta['items']]
  if absent:
    raise CheckpointMismatchError(
        f'{root / str(step)}: has no {", ".join(absent)} (it holds {", ".join(meta["items"])}); '
        'is it a checkpoint of another kind?')
  with ocp.CheckpointManager(root, options=ocp.CheckpointManagerOptions(read_only=True)) as manager:
    restored = manager.restore(step, args=ocp.args.Composite(
        **{name: ocp.args.StandardRestore() for name in names}))
  return {name: restored[name] for name in names}, meta


def check_against_template(tree: Any, template: Any, *, source: str) -> Any:
  """Returns `tree` as float numpy arrays after checking it has exactly the template's leaves."""
  flat = traverse_util.flatten_dict(dict(tree))
  flat_template = traverse_util.flatten_dict(dict(template))
  missing = sorted('/'.join(k) for k in flat_template if k not in flat)
  unexpected = sorted('/'.join(k) for k in flat if k not in flat_template)
  mis_shaped = sorted(f'{"/".join(k)} {np.shape(flat[k])} != {tuple(v.shape)}'
                      for k, v in flat_template.items()
                      if k in flat and tuple(np.shape(flat[k])) != tuple(v.shape))
  if missing or unexpected or mis_shaped:
    raise CheckpointMismatchError(
        f'{source}: does not fit the model built from its config '
        f'(missing {missing[:4]}, unexpected {unexpected[:4]}, mis-shaped {mis_shaped[:4]})')
  return traverse_util.unflatten_dict(
      {k: np.asarray(v, dtype=flat_template[k].dtype) for k, v in flat.items()})
