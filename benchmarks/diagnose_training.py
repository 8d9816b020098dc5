"""Checks of the training itself on the synthetic heads, as figures: the autoencoding check, the
keypoints against the head pose, per-term losses and gradient norms.

  # Source == driving: does the generator learn to reproduce its input, and how fast?
  python benchmarks/diagnose_training.py --config=configs/synthetic.py --workdir=runs/diag \
      --check=autoencode --steps=300 --every=50
  # The normal training pairs: per-term losses, gradient norms, held-out L1 and keypoint-pose
  # correlation every --every steps.
  python benchmarks/diagnose_training.py --config=configs/synthetic.py --workdir=runs/diag \
      --check=train --steps=300 --every=50

Makes the main job's inputs in WORKDIR first (synthetic clips, fitted inverse renderer, random
VGG19; reused when there), then runs the jitted training step in a plain loop (no checkpoints).
Every --every steps it prints and records the mean of each loss term and of each network's global
gradient norm since the last report, the held-out L1 of reconstructing a driving frame from the
clip's first frame, the autoencoding L1 (each held-out frame driven by itself), the no-motion
baseline, and the correlation of the keypoints' mean displacement with the ground-truth yaw and
pitch. Writes WORKDIR/diagnostics_<check>.json. Any config field can be overridden:
--config.train.lr_generator=1e-3.
"""

from __future__ import annotations

import functools
import json
import os
import time

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/synthetic.py', 'Synthetic job config.',
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', 'runs/diagnose', 'Inputs and the JSON go here.')
_CHECK = flags.DEFINE_enum('check', 'train', ['train', 'autoencode'],
                           "'autoencode': driving = source in every pair; 'train': the normal "
                           'pairs.')
_STEPS = flags.DEFINE_integer('steps', 300, 'Training steps.')
_EVERY = flags.DEFINE_integer('every', 50, 'Report every this many steps.')


def autoencode_l1(animator, config, batch_size: int = 16) -> float:
  """Mean |reconstruct(d, d) - d| over the held-out frames the job evaluates on."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  clips = job._split_source(config, 'test')  # pylint: disable=protected-access
  total, count = 0., 0
  for c in range(len(clips)):
    record = clips[c]
    idx = np.linspace(0, record['num_frames'] - 1, 8).round().astype(int)
    frames = job._decode_frames(record, idx)  # pylint: disable=protected-access
    for b in range(0, len(frames), batch_size):
      d = frames[b:b + batch_size]
      total += float(np.abs(animator.reconstruct(d, d)['prediction'] - d).mean()) * len(d)
      count += len(d)
  return total / count


def main(argv) -> None:
  del argv
  from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
  xla_flags.tune_cpu()
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import input_pipeline  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import optim  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import pretrained  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top

  workdir = _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  config = job.resolve_paths(_CONFIG.value, workdir)
  job.prepare_data(config)
  job.prepare_inverse_renderer(config)
  job.prepare_vgg19(config)
  batch_size = int(config.batch_size)
  train_input = input_pipeline.make_train_input(config, batch_size)
  steps_per_epoch = int(config.train.steps_per_epoch) if int(config.train.steps_per_epoch) > 0 \
      else max(1, train_input.num_examples // batch_size)
  optimizers = optim.make_optimizers(config, steps_per_epoch)
  state = jax.jit(functools.partial(state_lib.init_train_state, config, optimizers))(
      jax.random.PRNGKey(config.seed))
  frozen = pretrained.frozen_variables(config)
  step_fn = jax.jit(step_lib.make_train_step(config, optimizers), donate_argnums=(0,))
  autoencode = _CHECK.value == 'autoencode'
  baseline = job.source_copy_l1(config)
  print(f'check={_CHECK.value}; no-motion baseline (held-out L1 of copying the source frame): '
        f'{baseline:.4f}', flush=True)

  def report(step: int, history: list, seconds: float) -> dict:
    animator = job.animator_from_state(config, state)
    means = {k: float(np.mean([h[k] for h in history])) for k in history[0]} if history else {}
    row = {'step': step, 'seconds': seconds,
           'heldout_l1': job.heldout_l1(animator, config),
           'autoencode_l1': autoencode_l1(animator, config),
           'keypoint_pose_correlation': job.keypoint_pose_correlation(animator, config),
           'losses': {k: v for k, v in means.items() if not k.startswith('grad_norm/')
                      and k != 'finite'},
           'grad_norms': {k.split('/', 1)[1]: v for k, v in means.items()
                          if k.startswith('grad_norm/')}}
    corr = row['keypoint_pose_correlation']
    print(f"step {step:5d} ({seconds:5.0f} s): held-out L1 {row['heldout_l1']:.4f} "
          f"({row['heldout_l1'] / baseline:.2f}x baseline), autoencode L1 "
          f"{row['autoencode_l1']:.4f}, r(yaw,x) {corr['yaw_x']:+.2f} r(pitch,y) "
          f"{corr['pitch_y']:+.2f}", flush=True)
    print('   losses: ' + ', '.join(f'{k} {v:.4g}' for k, v in row['losses'].items()), flush=True)
    print('   grad norms: ' + ', '.join(f'{k} {v:.3g}' for k, v in row['grad_norms'].items()),
          flush=True)
    return row

  bad_records = input_pipeline.BadRecordMonitor(max_fraction=1.0)
  rows = [report(0, [], 0.)]
  history, start = [], time.time()
  for step in range(1, _STEPS.value + 1):
    batch = bad_records.take(dict(next(train_input.iterator)))
    if autoencode:
      batch['driving'] = batch['source']
    state, metrics = step_fn(state, batch, frozen)
    history.append(jax.device_get(metrics))
    if step % _EVERY.value == 0 or step == _STEPS.value:
      rows.append(report(step, history, time.time() - start))
      history = []
  out = os.path.join(workdir, f'diagnostics_{_CHECK.value}.json')
  with open(out + '.tmp', 'w') as f:
    json.dump({'check': _CHECK.value, 'source_copy_heldout_l1': baseline,
               'config': config.to_dict(), 'rows': rows}, f, indent=1)
  os.replace(out + '.tmp', out)
  print(f'wrote {out}')


if __name__ == '__main__':
  app.run(main)
