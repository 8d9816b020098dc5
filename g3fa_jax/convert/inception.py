"""FID Inception weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` -> Flax variables.

  python -m g3fa_jax.convert inception --checkpoint pt_inception-2015-12-05-6726825d.pth \
      --out checkpoints/inception

The file is a plain state dict of torchvision's `Inception3(num_classes=1008, aux_logits=False)`
with pytorch-fid's FID blocks: `Conv2d_1a_3x3.conv.weight`, `Conv2d_1a_3x3.bn.{weight,bias,
running_mean,running_var}`, ..., `Mixed_7c.branch_pool.bn.running_var`, and `fc.weight` (1008,
2048) / `fc.bias`, which FID does not use (ignored, as are `AuxLogits.*` if present).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Mapping


from g3fa_jax.convert import state_dict as sd
from g3fa_jax.convert import torch_io
from g3fa_jax.metrics import inception as inception_lib
from g3fa_jax.metrics import weights as weights_lib

def inception_to_variables(state_dict: Mapping[str, Any], *, source: str) -> dict[str, Any]:
  """Maps the pytorch-fid state dict (numpy values) onto `FidInceptionV3`'s variables."""
  state_dict = sd.strip_prefix(state_dict)
  if 'Conv2d_1a_3x3.conv.weight' not in state_dict:
    keys = ', '.join(sorted(map(str, state_dict))[:6]) or 'none'
    raise torch_io.CheckpointReadError(
        f'{source}: not an Inception-v3 state dict (no Conv2d_1a_3x3.conv.weight; keys: {keys})')
  unused = [k for k in state_dict if k.startswith(('fc.', 'AuxLogits.'))]
  return sd.state_dict_to_variables(state_dict, inception_lib.inception_template(), source=source,
                                    ignored=unused)


def read_inception_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
  """Reads pytorch-fid's weights file (weights_only) and converts it."""
  checkpoint = torch_io.load_torch_file(path)
  if not isinstance(checkpoint, Mapping):
    raise torch_io.CheckpointReadError(
        f'{path}: expected a state dict saved by torch.save, got {type(checkpoint).__name__}')
  return inception_to_variables(torch_io.to_numpy_state_dict(checkpoint, source=str(path)),
                                source=str(path))


def convert(args: argparse.Namespace) -> str:
  """`python -m g3fa_jax.convert inception --checkpoint pt_inception-....pth --out DIR`."""
  variables = read_inception_checkpoint(args.checkpoint)
  step_dir = weights_lib.save_metric_weights(args.out, inception_lib.NAME, variables, {},
                                             source=f'pytorch-fid Inception {args.checkpoint}')
  return f'wrote the FID Inception to {step_dir}'
