"""torchvision VGG19 ImageNet weights (`vgg19-dcbb9e9d.pth`, a plain state dict) -> Flax
variables."""

from __future__ import annotations

import os
from typing import Any, Mapping

from g3fa_jax.convert import state_dict as sd
from g3fa_jax.convert import torch_io
from g3fa_jax.models import vgg19 as vgg19_lib


def _unused_keys(state_dict: Mapping[str, Any]) -> list[str]:
  """The classifier and the convs after relu5_1: present in the file, not used by the loss."""
  built = {f'features.{i}.' for i, _ in vgg19_lib.VGG19_CONVS}
  return [k for k in state_dict
          if k.startswith('classifier.') or
          (k.startswith('features.') and not any(k.startswith(p) for p in built))]


def _check_is_vgg(state_dict: Mapping[str, Any], source: str) -> None:
  if 'features.0.weight' not in state_dict:
    keys = ', '.join(sorted(map(str, state_dict))[:6]) or 'none'
    raise torch_io.CheckpointReadError(
        f'{source}: not a torchvision VGG19 state dict (no features.0.weight; keys: {keys})')


def vgg19_to_variables(state_dict: Mapping[str, Any], *, source: str) -> dict[str, Any]:
  """Maps a torchvision `vgg19` state dict (numpy values) onto `Vgg19`'s variables.

  Raises:
    torch_io.CheckpointReadError: the state dict is not a VGG one (no `features.0.weight`).
    g3fa_jax.checkpoint.CheckpointMismatchError: a VGG of another depth or width (e.g. vgg16, vgg19_bn).
  """
  state_dict = sd.strip_prefix(state_dict)
  _check_is_vgg(state_dict, source)
  return sd.state_dict_to_variables(state_dict, vgg19_lib.vgg19_template(), source=source,
                                    ignored=_unused_keys(state_dict))


def read_vgg19_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
  """Reads torchvision's `vgg19-dcbb9e9d.pth` (weights_only) and converts it.

  Returns:
    {'params': {'features_<i>': {'kernel', 'bias'}}} for `Vgg19().apply`.
  """
  checkpoint = torch_io.load_torch_file(path)
  if not isinstance(checkpoint, Mapping):
    raise torch_io.CheckpointReadError(
        f'{path}: expected a state dict saved by torch.save, got {type(checkpoint).__name__}')
  _check_is_vgg(sd.strip_prefix(checkpoint), str(path))
  state_dict = torch_io.to_numpy_state_dict(checkpoint, source=str(path))
  return vgg19_to_variables(state_dict, source=str(path))
