"""Command line: convert PyTorch checkpoints to g3fa-jax orbax checkpoints.

  python -m g3fa_jax.convert official --checkpoint G3FA.pth --out DIR [--config configs/vox.py]
  python -m g3fa_jax.convert unsup3d --checkpoint checkpoint030.pth --out DIR
  python -m g3fa_jax.convert vgg19 --checkpoint vgg19-dcbb9e9d.pth --out DIR
  python -m g3fa_jax.convert {lpips,inception,arcface} ...   (evaluation metrics)
"""

from __future__ import annotations

import argparse
import sys

from g3fa_jax import checkpoint as ckpt
from g3fa_jax import model_config
from g3fa_jax.convert import arcface as arcface_convert
from g3fa_jax.convert import inception as inception_convert
from g3fa_jax.convert import lpips as lpips_convert
from g3fa_jax.convert import torch_io


def _config(path: str | None):
  return model_config.default_config() if path is None else model_config.load_config(path)


def _official(args: argparse.Namespace) -> str:
  from g3fa_jax.convert import official  # pylint: disable=g-import-not-at-top
  config = _config(args.config)
  variables, epoch = official.read_official_checkpoint(args.checkpoint, config)
  step_dir = ckpt.save_checkpoint(args.out, epoch, variables, config.to_dict(),
                                  source=f'official G3FA {args.checkpoint}')
  return f'wrote {", ".join(sorted(variables))} (epoch {epoch}) to {step_dir}'


def _unsup3d(args: argparse.Namespace) -> str:
  from g3fa_jax.convert import unsup3d  # pylint: disable=g-import-not-at-top
  config = _config(args.config)
  variables = unsup3d.read_unsup3d_checkpoint(args.checkpoint, config)
  step_dir = ckpt.save_checkpoint(args.out, 0, {'unsup3d': variables}, config.to_dict(),
                                  source=f'Unsup3D {args.checkpoint}')
  return f'wrote unsup3d to {step_dir}'


def _vgg19(args: argparse.Namespace) -> str:
  from g3fa_jax.convert import vgg19  # pylint: disable=g-import-not-at-top
  variables = vgg19.read_vgg19_checkpoint(args.checkpoint)
  step_dir = ckpt.save_checkpoint(args.out, 0, {'vgg19': variables},
                                  _config(args.config).to_dict(),
                                  source=f'torchvision VGG19 {args.checkpoint}')
  return f'wrote vgg19 to {step_dir}'


COMMANDS = {
    'official': (_official, 'official G3FA checkpoint (generator, kp_detector, discriminators)'),
    'unsup3d': (_unsup3d, "Unsup3D checkpoint030.pth (its netD depth network)"),
    'vgg19': (_vgg19, "VGG19 for the perceptual loss: torchvision's vgg19-dcbb9e9d.pth"),
    'lpips': (lpips_convert.convert, 'LPIPS: torchvision backbone and lpips heads, comma-separated '
              '(alexnet-owt-7be5be79.pth,alex.pth or vgg16-397923af.pth,vgg.pth)'),
    'inception': (inception_convert.convert,
                  "FID Inception: pytorch-fid's pt_inception-2015-12-05-6726825d.pth"),
    'arcface': (arcface_convert.convert, "ArcFace for CSIM: insightface arcface_torch backbone.pth"),
}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m g3fa_jax.convert', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest='command', required=True)
  for name, (_, help_text) in COMMANDS.items():
    p = sub.add_parser(name, help=help_text)
    p.add_argument('--checkpoint', required=True, help='the PyTorch .pth file')
    p.add_argument('--out', required=True, help='output orbax checkpoint directory')
    p.add_argument('--config', default=None,
                   help='config (.py with get_config() or official .yaml); default: vox-256')
  args = parser.parse_args(argv)
  try:
    print(COMMANDS[args.command][0](args))
  except (torch_io.CheckpointReadError, ckpt.CheckpointMismatchError, FileNotFoundError,
          ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
