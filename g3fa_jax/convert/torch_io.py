"""Reads PyTorch checkpoint files safely (`weights_only=True`) into numpy arrays."""

from __future__ import annotations

import os
import pathlib
import pickle
from typing import Any, Mapping

import numpy as np


class CheckpointReadError(ValueError):
  """A checkpoint file is missing, unreadable or not what the converter expects."""


def load_torch_file(path: str | os.PathLike) -> Any:
  """`torch.load(path, weights_only=True, map_location='cpu')`, with one-line errors.

  A checkpoint is untrusted input: files whose unpickling would run code are refused.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise CheckpointReadError(f'{path}: no such file')
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise CheckpointReadError(
        f'{path}: reading PyTorch checkpoints needs torch: pip install "g3fa-jax[torch]"') from e
  try:
    return torch.load(path, map_location='cpu', weights_only=True)
  except pickle.UnpicklingError as e:
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise CheckpointReadError(
        f'{path}: refused: loading it needs code execution, which weights_only=True forbids '
        f'({first_line}). Only plain tensor checkpoints are accepted.') from e
  except Exception as e:  # zip/pickle corruption surfaces as several exception types
    raise CheckpointReadError(f'{path}: not a readable PyTorch checkpoint ({type(e).__name__}: '
                              f'{str(e).strip().splitlines()[0] if str(e).strip() else ""})') from e


def to_numpy_state_dict(state_dict: Mapping[str, Any], *, source: str) -> dict[str, np.ndarray]:
  """torch tensors -> float32/int64 numpy arrays (bfloat16/float16 widened to float32)."""
  import torch  # pylint: disable=g-import-not-at-top
  out = {}
  for key, value in state_dict.items():
    if not isinstance(value, torch.Tensor):
      raise CheckpointReadError(f'{source}: entry {key!r} is a {type(value).__name__}, not a tensor')
    value = value.detach().cpu()
    if value.is_floating_point():
      value = value.to(torch.float32)
    out[key] = value.numpy()
  return out


def get_state_dict(checkpoint: Any, key: str, *, path: str | os.PathLike) -> Mapping[str, Any]:
  """`checkpoint[key]` when it is a state dict, else a clear error naming the file."""
  if not isinstance(checkpoint, Mapping):
    raise CheckpointReadError(f'{path}: expected a dict saved by torch.save, got '
                              f'{type(checkpoint).__name__}')
  if key not in checkpoint:
    keys = ', '.join(sorted(map(str, checkpoint))[:10])
    raise CheckpointReadError(f'{path}: has no {key!r} entry (top-level keys: {keys})')
  value = checkpoint[key]
  if not isinstance(value, Mapping):
    raise CheckpointReadError(f'{path}: {key!r} is a {type(value).__name__}, not a state dict')
  return value
