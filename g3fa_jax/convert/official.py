"""Official G3FA checkpoint (`torch.save` dict of state dicts) -> Flax variables."""

from __future__ import annotations

import os
from typing import Any, Mapping

import ml_collections

import numpy as np

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.convert import state_dict as sd
from g3fa_jax.convert import torch_io
from g3fa_jax.models import networks
from g3fa_jax.ops import antialias

# Computed constants in the official modules (anti-alias Gaussian kernels), not variables here.
ANTIALIAS_BUFFERS = ('down.weight', 'dense_motion_network.down.weight')
_ANTIALIAS_SCALE = {'kp_detector': ('kp_detector_params',),
                    'generator': ('generator_params', 'dense_motion_params')}


def _check_antialias_buffer(name: str, state_dict: Mapping[str, Any],
                            config: ml_collections.ConfigDict, source: str) -> None:
  """The stored anti-alias kernel must be the one the config's scale_factor computes.

  It is recomputed rather than loaded; a mismatch means the checkpoint was trained with another
  `scale_factor`. Agreement to 1e-3 admits kernels stored in reduced precision.
  """
  params = config.model
  for field in _ANTIALIAS_SCALE.get(name, ()):
    params = params[field]
  scale = params.get('scale_factor', 1)
  for key in ANTIALIAS_BUFFERS:
    if key not in state_dict:
      continue
    buffer = np.asarray(state_dict[key])
    expected = antialias.gaussian_kernel(scale) if scale != 1 else None
    if (expected is None or buffer.shape[-2:] != expected.shape
        or not np.allclose(buffer, expected[None, None], atol=1e-3)):
      raise ckpt.CheckpointMismatchError(
          f'{source} [{name}]: its anti-alias kernel {key} {buffer.shape} is not the one of '
          f'scale_factor {scale}; pass the config the checkpoint was trained with (--config)')


def official_to_variables(state_dicts: Mapping[str, Mapping[str, Any]],
                          config: ml_collections.ConfigDict, *, source: str,
                          names: tuple[str, ...] = networks.G3FA_NETWORKS) -> dict[str, Any]:
  """Maps the official networks' state dicts (numpy values) onto this project's variables.

  Args:
    state_dicts: network name (`generator`, `kp_detector`, ...) -> torch state dict; a
      DataParallel `module.` prefix is accepted.
    config: run config with `.model` (official schema) and `image_size`.
    source: the file they came from, for error messages.
    names: which networks to convert.
  """
  out = {}
  for name in names:
    template = networks.variables_template(name, config)
    state_dict = sd.strip_prefix(state_dicts[name])
    _check_antialias_buffer(name, state_dict, config, source)
    out[name] = sd.state_dict_to_variables(
        state_dict, template, source=f'{source} [{name}]',
        ignored=ANTIALIAS_BUFFERS)
  return out


def read_official_checkpoint(path: str | os.PathLike, config: ml_collections.ConfigDict,
                             ) -> tuple[dict[str, Any], int]:
  """Reads an official G3FA `.pth` (weights_only) and converts it; returns (variables, epoch).

  The discriminators are converted when present; a generator-only file (a released inference
  checkpoint) converts to the keypoint detector and generator.
  """
  checkpoint = torch_io.load_torch_file(path)
  names = tuple(n for n in networks.G3FA_NETWORKS
                if n in ('kp_detector', 'generator') or
                (isinstance(checkpoint, Mapping) and n in checkpoint))
  state_dicts = {
      name: torch_io.to_numpy_state_dict(
          torch_io.get_state_dict(checkpoint, name, path=path), source=f'{path} [{name}]')
      for name in names}
  epoch = checkpoint.get('epoch', 0) if isinstance(checkpoint, Mapping) else 0
  try:
    epoch = int(epoch)
  except (TypeError, ValueError):
    epoch = 0
  return official_to_variables(state_dicts, config, source=str(path), names=names), epoch

# Official attribute names that end in `_<digit>` but are not list elements.
OFFICIAL_LITERAL_NAMES = ('SPADE_0', 'SPADE_1', 'SPADE_2', 'SPADE_3', 'conv_0', 'conv_1',
                          'layer3_1', 'layer3_2', 'layer3_3')


def variables_to_official(variables: Any) -> dict[str, Any]:
  """One network's Flax variables -> its official PyTorch state dict (numpy values)."""
  return sd.variables_to_state_dict(variables, literal_names=OFFICIAL_LITERAL_NAMES)
