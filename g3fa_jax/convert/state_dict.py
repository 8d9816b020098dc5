"""Maps a PyTorch state dict onto a Flax variables tree, by name, with layout transposes.

The Flax modules of this project mirror the official PyTorch attribute names, so the mapping is a
rule, not a table:

- a numeric path segment `i` after `name` (ModuleList / Sequential / ModuleDict element) becomes the
  Flax submodule `name_i`: `predictor.encoder.down_blocks.0.conv.weight` ->
  `predictor/encoder/down_blocks_0/conv/kernel`;
- conv / linear `weight` -> `params/.../kernel` in Flax layout ((kh, kw, in, out), (kd, kh, kw, in,
  out), (in, out)); a transposed conv's torch weight (in, out, kh, kw) -> (kh, kw, in, out);
- norm `weight` -> `params/.../scale`; `bias` -> `params/.../bias`;
- BatchNorm `running_mean` / `running_var` -> `batch_stats/.../mean` / `var`; `num_batches_tracked`
  is dropped;
- spectral norm `weight_orig` -> `params/.../kernel`; `weight_u` / `weight_v` -> `spectral/.../u` / `v`.

Every variable of the template must be filled with an array of its exact shape, and every state-dict
entry must land somewhere (or be listed as ignored): anything else is a `CheckpointMismatchError`.
"""

from __future__ import annotations

import re
from typing import Any, Collection, Mapping

import numpy as np
from flax import traverse_util

from g3fa_jax.checkpoint import CheckpointMismatchError

_MAX_LISTED = 6


def flax_module_path(torch_module_path: str) -> str:
  """`a.b.0.c` -> `a/b_0/c` (torch dotted module path to a Flax submodule path)."""
  parts: list[str] = []
  for segment in torch_module_path.split('.'):
    if segment.isdigit() or re.fullmatch(r'\d+(-\d+)?', segment):
      if not parts:
        raise ValueError(f'cannot map torch path {torch_module_path!r}: it starts with an index')
      parts[-1] = f'{parts[-1]}_{segment}'
    else:
      parts.append(segment)
  return '/'.join(parts)


def _conv_or_linear_kernel(weight: np.ndarray, transposed: bool) -> np.ndarray:
  if weight.ndim == 2:
    return weight.T
  spatial = tuple(range(2, weight.ndim))
  if transposed:  # torch ConvTranspose: (in, out, *k)
    return weight.transpose(*spatial, 0, 1)
  return weight.transpose(*spatial, 1, 0)  # torch Conv: (out, in, *k)


def _target(torch_key: str, value: np.ndarray, template_flat: Mapping[tuple[str, ...], Any],
            transposed: bool) -> tuple[tuple[str, ...], np.ndarray] | None:
  """The (collection, *path) a torch entry fills and its value in Flax layout, or None to drop."""
  module, _, leaf = torch_key.rpartition('.')
  path = tuple(flax_module_path(module).split('/')) if module else ()
  if leaf == 'num_batches_tracked':
    return None
  if leaf == 'running_mean':
    return ('batch_stats', *path, 'mean'), value
  if leaf == 'running_var':
    return ('batch_stats', *path, 'var'), value
  if leaf == 'weight_u':
    return ('spectral', *path, 'u'), value
  if leaf == 'weight_v':
    return ('spectral', *path, 'v'), value
  if leaf == 'weight_orig':
    return ('params', *path, 'kernel'), _conv_or_linear_kernel(value, transposed)
  if leaf == 'bias':
    return ('params', *path, 'bias'), value
  if leaf == 'weight':
    if ('params', *path, 'scale') in template_flat:
      return ('params', *path, 'scale'), value
    if value.ndim >= 2:
      return ('params', *path, 'kernel'), _conv_or_linear_kernel(value, transposed)
    return ('params', *path, 'scale'), value
  return ('params', *path, leaf), value


def _listing(names: Collection[str]) -> str:
  names = sorted(names)
  shown = ', '.join(names[:_MAX_LISTED])
  return shown + (f' (+{len(names) - _MAX_LISTED} more)' if len(names) > _MAX_LISTED else '')


def state_dict_to_variables(state_dict: Mapping[str, Any], template: Mapping[str, Any], *,
                            source: str, transposed_convs: Collection[str] = (),
                            ignored: Collection[str] = ()) -> dict[str, Any]:
  """Fills a Flax variables tree from a PyTorch state dict.

  Args:
    state_dict: torch key -> array (numpy or anything `np.asarray` takes), without `module.` prefix.
    template: the Flax variables pytree to fill (arrays or `jax.ShapeDtypeStruct`s), e.g. from
      `jax.eval_shape(module.init, ...)`.
    source: what the state dict came from, for error messages (a file name and model name).
    transposed_convs: torch module paths (e.g. `network.11`) that are `ConvTranspose` layers.
    ignored: torch keys that are computed constants in Flax (e.g. anti-alias kernels); dropped.

  Returns:
    A nested dict with the template's structure, holding float32/int numpy arrays.

  Raises:
    CheckpointMismatchError: missing, unexpected or mis-shaped entries (lists the first few).
  """
  template_flat = traverse_util.flatten_dict(dict(template))
  filled: dict[tuple[str, ...], np.ndarray] = {}
  unexpected, mis_shaped = [], []
  ignored = set(ignored)
  transposed_modules = set(transposed_convs)
  for key, raw in state_dict.items():
    if key in ignored:
      continue
    value = np.asarray(raw)
    target = _target(key, value, template_flat, key.rpartition('.')[0] in transposed_modules)
    if target is None:
      continue
    path, converted = target
    if path not in template_flat:
      unexpected.append(key)
      continue
    expected = tuple(template_flat[path].shape)
    if tuple(converted.shape) != expected:
      mis_shaped.append(f'{key} {tuple(value.shape)} -> {"/".join(path)} expects {expected}')
      continue
    filled[path] = converted.astype(template_flat[path].dtype)
  missing = ['/'.join(path) for path in template_flat if path not in filled]
  problems = []
  if mis_shaped:
    problems.append(f'{len(mis_shaped)} shape mismatch(es): {_listing(mis_shaped)}')
  if missing:
    problems.append(f'{len(missing)} missing: {_listing(missing)}')
  if unexpected:
    problems.append(f'{len(unexpected)} unexpected: {_listing(unexpected)}')
  if problems:
    raise CheckpointMismatchError(
        f'{source}: does not match the model built from the config ({"; ".join(problems)}). '
        'Is it a checkpoint of another architecture or size? Pass the config it was trained with.')
  return traverse_util.unflatten_dict(filled)


def strip_prefix(state_dict: Mapping[str, Any], prefix: str = 'module.') -> dict[str, Any]:
  """Removes a DataParallel/DDP `module.` prefix from every key that has it."""
  return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def torch_module_path(flax_path: tuple[str, ...], literal_names: Collection[str]) -> str:
  """Inverse of `flax_module_path`: `('down_blocks_0', 'conv')` -> `down_blocks.0.conv`.

  `literal_names` are torch attributes whose own name ends in `_<digits>` (e.g. `SPADE_0`,
  `layer3_1`), which therefore are not list elements.
  """
  parts = []
  for segment in flax_path:
    match = re.fullmatch(r'(.+)_(\d+(?:-\d+)?)', segment)
    if match and segment not in literal_names:
      parts.extend(match.groups())
    else:
      parts.append(segment)
  return '.'.join(parts)


def variables_to_state_dict(variables: Mapping[str, Any], *, literal_names: Collection[str] = (),
                            transposed_convs: Collection[str] = ()) -> dict[str, np.ndarray]:
  """Flax variables -> a PyTorch-layout state dict (numpy), the inverse of the loader.

  BatchNorm modules get a `num_batches_tracked` entry (0) so that a strict `load_state_dict`
  accepts the result; spectral-norm kernels are written as `weight_orig`.
  """
  flat = traverse_util.flatten_dict(dict(variables))
  spectral_modules = {path[1:-1] for path in flat if path[0] == 'spectral'}
  out: dict[str, np.ndarray] = {}
  for path, value in flat.items():
    collection, module, leaf = path[0], path[1:-1], path[-1]
    prefix = torch_module_path(module, literal_names)
    value = np.asarray(value)
    if collection == 'batch_stats':
      out[f'{prefix}.running_{leaf}'] = value
      out.setdefault(f'{prefix}.num_batches_tracked', np.zeros((), np.int64))
    elif collection == 'spectral':
      out[f'{prefix}.weight_{leaf}'] = value
    elif leaf == 'kernel':
      if value.ndim == 2:
        weight = value.T
      else:
        spatial = tuple(range(value.ndim - 2))
        order = (value.ndim - 2, value.ndim - 1) if prefix in transposed_convs else (
            value.ndim - 1, value.ndim - 2)
        weight = value.transpose(*order, *spatial)
      name = 'weight_orig' if module in spectral_modules else 'weight'
      out[f'{prefix}.{name}'] = weight
    elif leaf == 'scale':
      out[f'{prefix}.weight'] = value
    else:
      out[f'{prefix}.{leaf}'] = value
  return out
