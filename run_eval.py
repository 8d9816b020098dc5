"""Evaluates a G3FA checkpoint the way the paper's Tables 1 and 2 do.

  python run_eval.py --config=configs/vox.py --checkpoint=checkpoints/g3fa \
      [--config.data.data_dir=data/vox] [--config.eval.weights_dir=checkpoints] [--workdir=DIR]

Same-identity reconstruction (L1, LPIPS, PSNR, SSIM, FID, AKD) and cross-identity reenactment
(FID, CSIM) on the prepared test split of `config.data.data_dir`; the table is printed and
written to WORKDIR/results.json and results.md, with sample grids (WORKDIR/samples) and
TensorBoard scalars (WORKDIR/tensorboard). Metric networks come from
`python -m g3fa_jax.convert <lpips|inception|arcface> ...`; a metric whose weights are missing is
reported as not computed, with the command that makes them. Evaluation settings are the config's
`eval` section (defaults: g3fa_jax/evaluation/config.py); `--config.eval.<field>=<value>`
overrides any of them (e.g. `--config.eval.max_videos=10 --config.eval.protocols=same`).
"""

from __future__ import annotations

import pathlib
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Run config (python file): data.data_dir and the `eval` section.',
    lock_config=True)
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Orbax checkpoint folder (root or step).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder (default: <checkpoint>_eval).')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar with frames/s.')
flags.mark_flags_as_required(['config', 'checkpoint'])


def main(argv) -> int:
  del argv
  from g3fa_jax import checkpoint as ckpt  # pylint: disable=g-import-not-at-top
  from g3fa_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
  config = _CONFIG.value
  try:
    cfg = runner.resolve_eval_config(config)
    data_dir = config.get('data', {}).get('data_dir')
    if not data_dir:
      raise ValueError('no dataset: set --config.data.data_dir (a folder written by '
                       'python -m data_prep.prepare)')
    checkpoint = pathlib.Path(_CHECKPOINT.value)
    workdir = _WORKDIR.value or str(checkpoint.absolute().with_name(checkpoint.name + '_eval'))
    runner.evaluate(checkpoint, workdir, data_dir=str(data_dir), cfg=cfg,
                    progress=_PROGRESS.value)
  except (FileNotFoundError, ValueError, KeyError, ckpt.CheckpointMismatchError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)))
