"""Unsup3D checkpoint (`checkpoint030.pth`, its `netD` depth network) -> Flax variables."""

from __future__ import annotations

import os
from typing import Any

import ml_collections

from g3fa_jax.convert import state_dict as sd
from g3fa_jax.convert import torch_io
from g3fa_jax.models import networks
from g3fa_jax.models import unsup3d as unsup3d_lib


def unsup3d_to_variables(net_d: dict[str, Any], config: ml_collections.ConfigDict, *,
                         source: str) -> dict[str, Any]:
  """Maps an EDDeconv state dict (numpy values) onto the Flax depth network's variables."""
  return sd.state_dict_to_variables(
      sd.strip_prefix(net_d), networks.variables_template('unsup3d', config), source=source,
      transposed_convs=unsup3d_lib.UNSUP3D_TRANSPOSED_CONVS)


def read_unsup3d_checkpoint(path: str | os.PathLike, config: ml_collections.ConfigDict,
                            ) -> dict[str, Any]:
  """Reads `checkpoint030.pth` (weights_only) and converts its `netD`."""
  checkpoint = torch_io.load_torch_file(path)
  net_d = torch_io.to_numpy_state_dict(
      torch_io.get_state_dict(checkpoint, 'netD', path=path), source=f'{path} [netD]')
  return unsup3d_to_variables(net_d, config, source=f'{path} [netD]')
