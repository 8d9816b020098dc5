"""Orbax checkpoints of model variables plus the config that built them.

One layout serves every writer and reader: a `CheckpointManager` directory whose step folders hold
one pytree item per network (`kp_detector`, `generator`, `discriminator`, `discriminator2`,
`discriminator3`, `unsup3d`, ...) and a JSON item `config` (the run config, so a checkpoint restores
without knowing how it was made). Converters write step = the official epoch; training writes more
items (optimiser states, data iterator) into the same folders (`g3fa_jax.train.checkpointing`),
with the same metadata (`metadata`, `check_metadata`).

`restore_networks` is the one way a network comes back from disk: the converted official models
(`g3fa_jax.inference`), the frozen networks of training (`g3fa_jax.train.pretrained`) and the
metric networks (`g3fa_jax.metrics.weights`) all restore through it, checked against the template
of the module that will run them. A checkpoint that does not fit raises `CheckpointMismatchError`;
one that is absent raises `MissingCheckpointError`, naming the command that makes it.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, Mapping, Sequence

import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

FORMAT = 'g3fa-jax'
FORMAT_VERSION = 1
CONFIG_ITEM = 'config'


class CheckpointMismatchError(ValueError):
  """A checkpoint does not fit the model built from the config (other architecture or size)."""


class MissingCheckpointError(FileNotFoundError):
  """A checkpoint that is not there; the message names the command that makes it."""


def metadata(item_names: Sequence[str], config: Mapping[str, Any], source: str = '') -> dict:
  """The JSON item `config` of a step: the format, its items, where it came from, the config."""
  return {'format': FORMAT, 'format_version': FORMAT_VERSION, 'items': list(item_names),
          'source': source, 'config': dict(config)}


def check_metadata(meta: Any, where: str | os.PathLike) -> dict:
  """`meta` if it is this format's metadata, else a ValueError naming `where` (the step folder)."""
  if not isinstance(meta, dict) or meta.get('format') != FORMAT:
    raise ValueError(f'{where}: not a {FORMAT} checkpoint')
  return meta


def save_step(manager: ocp.CheckpointManager, step: int, items: Mapping[str, Any], meta: dict,
              extra_args: Mapping[str, Any] | None = None) -> None:
  """Starts writing step `step`: `items` (name -> pytree), `extra_args` (name -> orbax save args,
  e.g. a data iterator's) and the metadata `meta` (see `metadata`)."""
  args = {name: ocp.args.StandardSave(tree) for name, tree in items.items()}
  args.update(extra_args or {})
  args[CONFIG_ITEM] = ocp.args.JsonSave(meta)
  manager.save(step, args=ocp.args.Composite(**args), force=True)


def read_metadata(manager: ocp.CheckpointManager, step: int) -> dict:
  """The checked metadata of step `step` of an open manager."""
  meta = manager.restore(step, args=ocp.args.Composite(
      **{CONFIG_ITEM: ocp.args.JsonRestore()}))[CONFIG_ITEM]
  return check_metadata(meta, f'{manager.directory}/{step}')


def save_checkpoint(directory: str | os.PathLike, step: int, items: Mapping[str, Any],
                    config: Mapping[str, Any], *, source: str = '') -> pathlib.Path:
  """Writes `items` (name -> variables pytree) and `config` as step `step` under `directory`.

  Orbax writes to a temporary folder and renames it when complete, so an interrupted save never
  leaves a readable half checkpoint. Returns the step folder.
  """
  directory = pathlib.Path(directory).absolute()
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(enable_async_checkpointing=False))
  save_step(manager, step, items, metadata(sorted(items), config, source))
  manager.wait_until_finished()
  manager.close()
  return directory / str(step)


def _resolve(directory: str | os.PathLike, step: int | None) -> tuple[pathlib.Path, int]:
  """Accepts a manager root (latest or given step) or one step folder."""
  path = pathlib.Path(directory).expanduser().absolute()
  if not path.is_dir():
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
    return read_metadata(manager, step), step


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


def restore_networks(directory: str | os.PathLike, names: Sequence[str],
                     template: Callable[[str, ml_collections.ConfigDict], Any], *,
                     step: int | None = None, make_command: str = '',
                     ) -> tuple[dict[str, Any], dict]:
  """Restores converted (or trained) networks, each checked against the module that will run it.

  Args:
    directory: a checkpoint root (the latest step unless `step` is given) or one step folder.
    names: the items to restore ('kp_detector', 'unsup3d', 'lpips', ...).
    template: (name, the config stored with the checkpoint) -> that network's variables template
      (arrays or `jax.ShapeDtypeStruct`s), e.g. `models.networks.variables_template`.
    step: the step to restore.
    make_command: the command that writes the checkpoint, named when it is absent.

  Returns:
    ({name: variables as numpy arrays}, the checkpoint's metadata (see `metadata`)).

  Raises:
    MissingCheckpointError: `directory` holds no checkpoint (only with a `make_command`; without
      one, the FileNotFoundError as it is).
    CheckpointMismatchError: an item is absent, or does not fit its template.
    ValueError: not a checkpoint of this format.
  """
  try:
    items, meta = restore_items(directory, names, step)
  except FileNotFoundError as e:
    if not make_command:
      raise
    raise MissingCheckpointError(f'{e}; make it with: {make_command}') from e
  config = ml_collections.ConfigDict(meta['config'])
  variables = {name: check_against_template(items[name], template(name, config),
                                            source=f'{directory} [{name}]')
               for name in names}
  return variables, meta
