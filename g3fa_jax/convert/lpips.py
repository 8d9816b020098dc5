"""LPIPS weights: a torchvision backbone state dict plus the `lpips` package's linear heads.

  python -m g3fa_jax.convert lpips \
      --checkpoint alexnet-owt-7be5be79.pth,alex.pth --out checkpoints/lpips_alex
  python -m g3fa_jax.convert lpips \
      --checkpoint vgg16-397923af.pth,vgg.pth --out checkpoints/lpips_vgg

`--checkpoint` names both files, comma-separated, in either order:
- torchvision's ImageNet backbone, a plain state dict: `alexnet-owt-7be5be79.pth` (AlexNet) or
  `vgg16-397923af.pth` (VGG16); keys `features.<i>.weight|bias` (the `classifier.*` keys are
  ignored);
- the heads `lpips/weights/v0.1/alex.pth` or `vgg.pth` from the `lpips` package (pip wheel
  `lpips==0.1.4`): keys `lin0.model.1.weight` .. `lin4.model.1.weight`, each (1, C, 1, 1).
The variant (alex / vgg) is recognised from the shapes; backbone and heads must agree. Instead of
the heads file, the wheel itself may be named (`pip download --no-deps lpips==0.1.4`):
  python -m g3fa_jax.convert lpips \
      --checkpoint alexnet-owt-7be5be79.pth,lpips-0.1.4-py3-none-any.whl \
      --out checkpoints/lpips_alex
"""

from __future__ import annotations

import argparse
import os
import tempfile
import zipfile
from typing import Any, Mapping, Sequence

import numpy as np

from g3fa_jax.convert import state_dict as sd
from g3fa_jax.convert import torch_io
from g3fa_jax.metrics import lpips as lpips_lib
from g3fa_jax.metrics import weights as weights_lib

def _backbone_net(state_dict: Mapping[str, Any]) -> str | None:
  w = state_dict.get('features.0.weight')
  if w is None:
    return None
  return {11: 'alex', 3: 'vgg'}.get(int(np.shape(w)[-1]))


def _heads_net(state_dict: Mapping[str, Any]) -> str | None:
  w = state_dict.get('lin1.model.1.weight')
  if w is None:
    return None
  channels = int(np.shape(w)[1])
  return next((n for n, spec in lpips_lib.NETS.items() if spec['channels'][1] == channels), None)


def lpips_to_variables(backbone: Mapping[str, Any], heads: Mapping[str, Any], *,
                       source: str) -> tuple[dict[str, Any], str]:
  """Maps the two state dicts (numpy values) onto `Lpips`'s variables.

  Returns:
    (variables {'params': {'features_<i>': ..., 'lin<k>': {'model_1': {'kernel'}}}}, net).

  Raises:
    torch_io.CheckpointReadError: not an AlexNet/VGG16 backbone and LPIPS heads, or a mixed pair.
    g3fa_jax.checkpoint.CheckpointMismatchError: right kind of file but wrong shapes or keys.
  """
  backbone, heads = sd.strip_prefix(backbone), sd.strip_prefix(heads)
  net, head_net = _backbone_net(backbone), _heads_net(heads)
  if net is None:
    raise torch_io.CheckpointReadError(
        f'{source}: no torchvision AlexNet/VGG16 backbone (features.0.weight of kernel 11 or 3)')
  if head_net is None:
    raise torch_io.CheckpointReadError(
        f'{source}: no LPIPS linear heads (lin<k>.model.1.weight of the lpips package)')
  if net != head_net:
    raise torch_io.CheckpointReadError(
        f'{source}: the backbone is {net} but the linear heads are for {head_net}')
  built = {f'features.{i}.' for i in lpips_lib.NETS[net]['convs']}
  unused = [k for k in backbone if not any(k.startswith(p) for p in built)]
  merged = {**backbone, **heads}
  variables = sd.state_dict_to_variables(merged, lpips_lib.lpips_template(net), source=source,
                                         ignored=unused)
  return variables, net


def _read(path: str) -> dict[str, np.ndarray]:
  checkpoint = torch_io.load_torch_file(path)
  if not isinstance(checkpoint, Mapping):
    raise torch_io.CheckpointReadError(
        f'{path}: expected a state dict saved by torch.save, got {type(checkpoint).__name__}')
  return torch_io.to_numpy_state_dict(checkpoint, source=path)


def _read_heads_from_wheel(wheel: str, net: str) -> dict[str, np.ndarray]:
  """The v0.1 heads of `net` from an `lpips` wheel (`lpips/weights/v0.1/<net>.pth`)."""
  member = f'lpips/weights/v0.1/{net}.pth'
  try:
    archive = zipfile.ZipFile(wheel)
  except (OSError, zipfile.BadZipFile) as e:
    raise torch_io.CheckpointReadError(f'{wheel}: not a readable wheel (zip) file ({e})') from e
  with archive, tempfile.TemporaryDirectory() as tmp:
    if member not in archive.namelist():
      raise torch_io.CheckpointReadError(f'{wheel}: has no {member}; is it the lpips wheel?')
    return _read(archive.extract(member, tmp))


def read_lpips_checkpoints(paths: Sequence[str | os.PathLike]) -> tuple[dict[str, Any], str]:
  """Reads the backbone and heads files (either order, weights_only) and converts them.

  The heads may also be given as the `lpips` wheel itself (`lpips-0.1.4-py3-none-any.whl`), from
  which the v0.1 heads of the backbone's variant are read.
  """
  if len(paths) != 2:
    raise torch_io.CheckpointReadError(
        f'LPIPS needs two files (torchvision backbone, lpips heads), got {len(paths)}: '
        f'{", ".join(map(str, paths))}')
  source = ' + '.join(map(str, paths))
  wheels = [str(p) for p in paths if str(p).endswith('.whl')]
  if wheels:
    backbone = _read(next(str(p) for p in paths if not str(p).endswith('.whl')))
    net = _backbone_net(backbone)
    if net is None:
      raise torch_io.CheckpointReadError(
          f'{source}: no torchvision AlexNet/VGG16 backbone (features.0.weight of kernel 11 or 3)')
    return lpips_to_variables(backbone, _read_heads_from_wheel(wheels[0], net), source=source)
  dicts = [_read(str(p)) for p in paths]
  if _heads_net(dicts[0]) is not None:
    dicts.reverse()
  return lpips_to_variables(dicts[0], dicts[1], source=source)


def convert(args: argparse.Namespace) -> str:
  """`python -m g3fa_jax.convert lpips --checkpoint BACKBONE.pth,HEADS.pth --out DIR`."""
  paths = [p for p in args.checkpoint.split(',') if p]
  variables, net = read_lpips_checkpoints(paths)
  step_dir = weights_lib.save_metric_weights(args.out, lpips_lib.NAME, variables, {'net': net},
                                             source=f'LPIPS {net}: {args.checkpoint}')
  return f'wrote LPIPS ({net}) to {step_dir}'
