"""Converted metric networks on disk: one orbax checkpoint folder per network.

`python -m g3fa_jax.convert <lpips|inception|arcface> --checkpoint ... --out DIR` writes step 0 of
an orbax checkpoint (the project's layout, `g3fa_jax.checkpoint`) with one item, the network's
Flax variables, and in its config JSON `{'metric_network': name, ...}` (e.g. the LPIPS backbone or
the ArcFace depth), so a folder restores without knowing how it was made.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, Mapping

import ml_collections

from g3fa_jax import checkpoint as ckpt


class MissingWeightsError(FileNotFoundError):
  """A metric's converted weights are absent; the message says how to make them."""


def save_metric_weights(out: str | os.PathLike, name: str, variables: Any,
                        info: Mapping[str, Any], *, source: str) -> pathlib.Path:
  """Writes `variables` as item `name` of step 0 of an orbax checkpoint in `out`."""
  config = {'metric_network': name, **dict(info)}
  return ckpt.save_checkpoint(out, 0, {name: variables}, config, source=source)


def load_metric_weights(directory: str | os.PathLike, name: str,
                        template_fn: Callable[[ml_collections.ConfigDict], Any],
                        make_command: str) -> tuple[Any, dict]:
  """Restores item `name` and checks it against `template_fn(info)`'s shapes.

  Args:
    directory: the folder written by the converter.
    name: the network's item name ('lpips', 'inception', 'arcface').
    template_fn: info ConfigDict -> the Flax variables template.
    make_command: the command that writes the folder, quoted in the error when it is absent.

  Returns:
    (variables as numpy arrays, info dict as stored).

  Raises:
    MissingWeightsError: no such folder or no checkpoint in it.
  """
  path = pathlib.Path(directory).expanduser()
  if not path.is_dir():
    raise MissingWeightsError(f'{path}: no converted {name} weights; make them with: '
                              f'{make_command}')
  try:
    items, meta = ckpt.restore_items(path, (name,))
  except FileNotFoundError as e:
    raise MissingWeightsError(f'{e}; make them with: {make_command}') from e
  info = dict(meta['config'])
  if info.get('metric_network') != name:
    raise ValueError(f'{path}: holds {info.get("metric_network")!r} weights, not {name!r}')
  template = template_fn(ml_collections.ConfigDict(info))
  variables = ckpt.check_against_template(items[name], template, source=f'{path} [{name}]')
  return variables, info
