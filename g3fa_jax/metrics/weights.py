"""Converted metric networks on disk: one orbax checkpoint folder per network.

`python -m g3fa_jax.convert <lpips|inception|arcface> --checkpoint ... --out DIR` writes step 0 of
an orbax checkpoint (the project's layout, `g3fa_jax.checkpoint`) with one item, the network's
Flax variables, and in its config JSON `{'metric_network': name, ...}` (e.g. the LPIPS backbone or
the ArcFace depth), so a folder restores without knowing how it was made. Each network's module
(`lpips`, `inception`, `arcface`) holds its item `NAME`, its template and the command that makes
its folder (`make_command`).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, Mapping

import ml_collections

from g3fa_jax import checkpoint as ckpt


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
    g3fa_jax.checkpoint.MissingCheckpointError: no such folder or no checkpoint in it.
  """
  def template(item: str, info: ml_collections.ConfigDict) -> Any:
    if info.get('metric_network') != item:
      raise ValueError(f'{directory}: holds {info.get("metric_network")!r} weights, not {item!r}')
    return template_fn(info)

  variables, meta = ckpt.restore_networks(directory, (name,), template, make_command=make_command)
  return variables[name], dict(meta['config'])
