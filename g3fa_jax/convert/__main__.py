"""Command line: convert PyTorch checkpoints to g3fa-jax orbax checkpoints.

  python -m g3fa_jax.convert official --checkpoint G3FA.pth --out DIR [--config configs/vox.py]
  python -m g3fa_jax.convert unsup3d --checkpoint checkpoint030.pth --out DIR
"""

from __future__ import annotations

import argparse
import sys

from g3fa_jax import checkpoint as ckpt
from g3fa_jax import model_config
from g3fa_jax.convert import state_dict as sd
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


COMMANDS = {
    'official': (_official, 'official G3FA checkpoint (generator, kp_detector, discriminators)'),
    'unsup3d': (_unsup3d, "Unsup3D checkpoint030.pth (its netD depth network)"),
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
  except (torch_io.CheckpointReadError, sd.CheckpointMismatchError, FileNotFoundError,
          ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
