"""MTCNN weights: facenet-pytorch's `pnet.pt`, `rnet.pt`, `onet.pt` -> one Flax-layout `.npz`.

The repository ships the result as `g3fa_jax/face/mtcnn_weights.npz`; this regenerates it:

  pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fnp
  python -m g3fa_jax.convert.mtcnn --wheel /tmp/fnp/facenet_pytorch-2.6.0-py3-none-any.whl \
      --out g3fa_jax/face/mtcnn_weights.npz

(`--weights-dir DIR` reads the three `.pt` files from a folder instead of the wheel.) Needs torch;
the files are read with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import zipfile
from typing import Mapping

import numpy as np

from g3fa_jax.convert import torch_io

NETS = ('pnet', 'rnet', 'onet')


def torch_to_flax(net: str, state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """One net's PyTorch state dict -> flat `{'<net>/<layer>/<leaf>': array}` in Flax layout."""
  out = {}
  for key, value in state_dict.items():
    layer, leaf = key.rsplit('.', 1)
    if layer.startswith('prelu'):
      out[f'{net}/{layer}/alpha'] = value
    elif leaf == 'bias':
      out[f'{net}/{layer}/bias'] = value
    elif value.ndim == 4:  # conv (out, in, kh, kw) -> (kh, kw, in, out)
      out[f'{net}/{layer}/kernel'] = np.transpose(value, (2, 3, 1, 0))
    elif value.ndim == 2:  # linear (out, in) -> (in, out)
      out[f'{net}/{layer}/kernel'] = value.T
    else:
      raise torch_io.CheckpointReadError(f'{net}: unexpected entry {key} of shape {value.shape}')
  return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _read_pt(path: pathlib.Path, net: str) -> dict[str, np.ndarray]:
  state_dict = torch_io.load_torch_file(path)
  return torch_to_flax(net, torch_io.to_numpy_state_dict(state_dict, source=str(path)))


def read_weights_dir(weights_dir: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads `pnet.pt`, `rnet.pt`, `onet.pt` from a folder."""
  out = {}
  for net in NETS:
    out.update(_read_pt(pathlib.Path(weights_dir) / f'{net}.pt', net))
  return out


def read_wheel(wheel: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads the three nets from a facenet-pytorch wheel (`facenet_pytorch/data/<net>.pt`)."""
  wheel = pathlib.Path(wheel)
  if not wheel.is_file():
    raise torch_io.CheckpointReadError(f'{wheel}: no such file')
  try:
    archive = zipfile.ZipFile(wheel)
  except zipfile.BadZipFile as e:
    raise torch_io.CheckpointReadError(f'{wheel}: not a wheel (zip) file') from e
  with archive, tempfile.TemporaryDirectory() as tmp:
    for net in NETS:
      member = f'facenet_pytorch/data/{net}.pt'
      if member not in archive.namelist():
        raise torch_io.CheckpointReadError(f'{wheel}: has no {member}; is it facenet-pytorch?')
      archive.extract(member, tmp)
    return read_weights_dir(pathlib.Path(tmp) / 'facenet_pytorch' / 'data')


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m g3fa_jax.convert.mtcnn', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  group = parser.add_mutually_exclusive_group(required=True)
  group.add_argument('--wheel', help='facenet_pytorch-*.whl')
  group.add_argument('--weights-dir', help='folder with pnet.pt, rnet.pt, onet.pt')
  parser.add_argument('--out', required=True, help='output .npz')
  args = parser.parse_args(argv)
  try:
    weights = read_wheel(args.wheel) if args.wheel else read_weights_dir(args.weights_dir)
  except torch_io.CheckpointReadError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_name(out.name + '.tmp.npz')
  np.savez(tmp, **weights)
  os.replace(tmp, out)
  print(f'wrote {len(weights)} arrays to {out}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
