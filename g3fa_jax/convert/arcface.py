"""ArcFace weights: insightface `arcface_torch` IResNet `backbone.pth` -> Flax variables.

  python -m g3fa_jax.convert arcface --checkpoint backbone.pth --out checkpoints/arcface

`backbone.pth` is the plain state dict that insightface's `arcface_torch` saves and releases
(e.g. its ms1mv3 / glint360k iresnet50 or iresnet100 models): `conv1.weight`, `bn1.*`,
`prelu.weight`, `layer<s>.<i>.{bn1,conv1,bn2,prelu,conv2,bn3}.*`, `layer<s>.0.downsample.{0,1}.*`,
`bn2.*`, `fc.weight` (512, 25088), `fc.bias`, `features.*` (BatchNorm1d). The depth (blocks per
stage) and the embedding size are read from the keys and shapes.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any, Mapping


from g3fa_jax.convert import state_dict as sd
from g3fa_jax.convert import torch_io
from g3fa_jax.metrics import arcface as arcface_lib
from g3fa_jax.metrics import weights as weights_lib

def architecture(state_dict: Mapping[str, Any], *, source: str) -> tuple[tuple[int, ...], int]:
  """(blocks per stage, embedding size) of an IResNet state dict."""
  blocks = [0, 0, 0, 0]
  for key in state_dict:
    m = re.match(r'layer([1-4])\.(\d+)\.', key)
    if m:
      stage = int(m.group(1)) - 1
      blocks[stage] = max(blocks[stage], int(m.group(2)) + 1)
  if 'fc.weight' not in state_dict or not all(blocks):
    keys = ', '.join(sorted(map(str, state_dict))[:6]) or 'none'
    raise torch_io.CheckpointReadError(
        f'{source}: not an insightface IResNet state dict (needs layer1..layer4 and fc; '
        f'keys: {keys})')
  return tuple(blocks), int(state_dict['fc.weight'].shape[0])


def arcface_to_variables(state_dict: Mapping[str, Any], *, source: str
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
  """Maps an IResNet state dict (numpy values) onto `IResNet`'s variables.

  Returns:
    (variables, info {'layers': [...], 'num_features': d, 'arch': 'r50' or 'custom'}).
  """
  state_dict = sd.strip_prefix(state_dict)
  layers, num_features = architecture(state_dict, source=source)
  # PReLU slopes are `weight` in PyTorch; `alpha` here.
  renamed = {(k[:-len('weight')] + 'alpha' if k.endswith('prelu.weight') else k): v
             for k, v in state_dict.items()}
  variables = sd.state_dict_to_variables(
      renamed, arcface_lib.arcface_template(layers, num_features), source=source)
  arch = next((name for name, spec in arcface_lib.ARCHS.items() if spec == layers), 'custom')
  return variables, {'layers': list(layers), 'num_features': num_features, 'arch': arch}


def read_arcface_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
  """Reads insightface's `backbone.pth` (weights_only) and converts it."""
  checkpoint = torch_io.load_torch_file(path)
  if isinstance(checkpoint, Mapping) and 'state_dict' in checkpoint and isinstance(
      checkpoint['state_dict'], Mapping):
    checkpoint = checkpoint['state_dict']
  if not isinstance(checkpoint, Mapping):
    raise torch_io.CheckpointReadError(
        f'{path}: expected a state dict saved by torch.save, got {type(checkpoint).__name__}')
  return arcface_to_variables(torch_io.to_numpy_state_dict(checkpoint, source=str(path)),
                              source=str(path))


def convert(args: argparse.Namespace) -> str:
  """`python -m g3fa_jax.convert arcface --checkpoint backbone.pth --out DIR`."""
  variables, info = read_arcface_checkpoint(args.checkpoint)
  step_dir = weights_lib.save_metric_weights(args.out, arcface_lib.NAME, variables, info,
                                             source=f'insightface ArcFace {args.checkpoint}')
  return f'wrote ArcFace ({info["arch"]}, {info["num_features"]}-d) to {step_dir}'
