"""Evaluates a G3FA checkpoint the way the paper's Tables 1 and 2 do.

  python run_eval.py --config=configs/vox.py --checkpoint=checkpoints/g3fa \
      [--data_dir=data/vox] [--weights_dir=checkpoints] [--workdir=DIR]

Same-identity reconstruction (L1, LPIPS, PSNR, SSIM, FID, AKD) and cross-identity reenactment
(FID, CSIM) on the prepared test split; the table is printed and written to WORKDIR/results.json
and results.md, with sample grids (WORKDIR/samples) and TensorBoard scalars (WORKDIR/tensorboard).
Metric networks come from `python -m g3fa_jax.convert <lpips|inception|arcface> ...`; a metric
whose weights are missing is reported as not computed, with the command that makes them.
Evaluation settings are the config's `eval` section (defaults: g3fa_jax/evaluation/config.py);
the flags below override them.
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
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Prepared dataset (default: config.data).')
_WEIGHTS_DIR = flags.DEFINE_string('weights_dir', None,
                                   'Folder of converted metric networks: lpips_alex, lpips_vgg, '
                                   'inception, arcface (default: eval.weights_dir).')
_LPIPS_ALEX = flags.DEFINE_string('lpips_alex', None, 'Converted LPIPS (AlexNet) folder.')
_LPIPS_VGG = flags.DEFINE_string('lpips_vgg', None, 'Converted LPIPS (VGG16) folder.')
_INCEPTION = flags.DEFINE_string('inception', None, 'Converted FID Inception folder.')
_ARCFACE = flags.DEFINE_string('arcface', None, 'Converted ArcFace folder.')
_PAIRS = flags.DEFINE_string('pairs', None, 'Cross-identity pair list (CSV of clip keys).')
_PROTOCOLS = flags.DEFINE_string('protocols', None, "'same', 'cross' or 'same,cross'.")
_MAX_VIDEOS = flags.DEFINE_integer('max_videos', None, 'Same identity: first N test videos.')
_MAX_FRAMES = flags.DEFINE_integer('max_frames', None, 'First N frames of every video.')
_NUM_PAIRS = flags.DEFINE_integer('num_pairs', None, 'Cross identity: pairs drawn from the seed.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', None, 'Frames per batch.')
_PROGRESS = flags.DEFINE_bool('progress', True, 'Show a progress bar with frames/s.')
flags.mark_flags_as_required(['checkpoint'])

_OVERRIDES = {'weights_dir': _WEIGHTS_DIR, 'lpips_alex': _LPIPS_ALEX, 'lpips_vgg': _LPIPS_VGG,
              'inception': _INCEPTION, 'arcface': _ARCFACE, 'pairs_file': _PAIRS,
              'protocols': _PROTOCOLS, 'max_videos': _MAX_VIDEOS, 'max_frames': _MAX_FRAMES,
              'num_pairs': _NUM_PAIRS, 'batch_size': _BATCH_SIZE}


def _data_dir(config) -> str:
  if _DATA_DIR.value:
    return _DATA_DIR.value
  data = config.get('data') if config is not None else None
  for field in ('data_dir', 'dir'):
    if data is not None and data.get(field):
      return str(data.get(field))
  raise ValueError('no dataset: pass --data_dir (a folder written by python -m data_prep.prepare)')


def main(argv) -> int:
  del argv
  from g3fa_jax.convert import state_dict as sd  # pylint: disable=g-import-not-at-top
  from g3fa_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
  try:
    cfg = runner.resolve_eval_config(_CONFIG.value)
    for key, flag in _OVERRIDES.items():
      if flag.value is not None:
        cfg[key] = flag.value
    checkpoint = pathlib.Path(_CHECKPOINT.value)
    workdir = _WORKDIR.value or str(checkpoint.absolute().with_name(checkpoint.name + '_eval'))
    runner.evaluate(checkpoint, workdir, data_dir=_data_dir(_CONFIG.value), cfg=cfg,
                    progress=_PROGRESS.value)
  except (FileNotFoundError, ValueError, KeyError, sd.CheckpointMismatchError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)))
