"""What the 64x64 synthetic recipe can reach at best, and whether its motion can be learnt alone.

  # Floors on the held-out frames: copying the source; the driving frame itself passed through a
  # 2x / 4x smaller resolution (what a decoder fed 32x32 / 16x16 features can render without
  # learning super-resolution); the source warped by an identity motion field at the dense-motion
  # resolution, with the official align_corners=False warps and with warp_align_corners.
  python benchmarks/diagnose_motion.py --workdir=runs/diag --check=floors
  # What a warp can reach on the held-out pairs: the source warped by the GROUND-TRUTH motion
  # (from the synthetic depth and head poses, g3fa_jax.synthetic.flow) at the dense motion's
  # resolution and at full resolution, and by a free-form motion field at the dense motion's
  # resolution fitted to each pair (it sees the driving frame: a bound, not a method).
  python benchmarks/diagnose_motion.py --workdir=runs/diag --check=oracle
  # What each factor of a frame costs: the held-out driving frames rendered again with one factor
  # (pose, mouth, eyes, light, background; g3fa_jax.synthetic.factors) at the source frame's
  # values, against the real driving frames. Holding the light is what a perfect animator gives
  # (nothing of the driving frame's light passes through the keypoints): the floor of any method.
  python benchmarks/diagnose_motion.py --workdir=runs/diag --check=factors
  # Keypoint detector + dense motion alone, trained on the L1 between the warped source and the
  # driving frame (+ the equivariance losses with --equivariance=10): does the warp beat copying?
  python benchmarks/diagnose_motion.py --workdir=runs/diag --check=motion --steps=600 --every=200
  # The zero-motion channel withheld for the first 1500 steps (train.zero_motion_warmup_steps):
  python benchmarks/diagnose_motion.py --workdir=runs/diag --check=motion --steps=3000 \
      --every=250 --zero_motion_warmup=1500
  # The same with the ground-truth motion as a teacher for the first 1000 steps: the dense motion
  # (--truth_motion) and the keypoints (--truth_keypoints: T_k(kp_driving) = kp_source, so each
  # keypoint's own motion is right where it sits).
  python benchmarks/diagnose_motion.py --workdir=runs/diag --check=motion --steps=1500 \
      --every=250 --truth_motion=10 --truth_keypoints=10 --truth_steps=1000
  # Each keypoint's own motion judged in a window around it (loss_weights.local_motion): the
  # keypoints learn while the mask sits on zero motion, then the mask leaves it by itself; with
  # --stop_below the run ends, as the job's warm-up does, once the warped source beats copying on
  # the training pairs. Its settings come from the config: try --config.seed=1 / 2,
  # --config.train.local_motion_scales='(1.0, 0.5, 0.25)', --config.train.local_motion_highpass=1.
  python benchmarks/diagnose_motion.py --workdir=runs/diag --check=motion --steps=6000 \
      --every=250 --local_motion=10 --stop_below=0.93
  # Every --check=motion report also scores the learnt motion against the TRUE motion of the
  # held-out pairs and of 12 training clips (g3fa_jax/demo/true_motion.py): the gain of the dense
  # motion and of the keypoints (1: the true motion, 0: none), their endpoint errors next to no
  # motion's, and the keypoints' spread (0: all in one place). Keypoints kept apart:
  python benchmarks/diagnose_motion.py --workdir=runs/diag --check=motion --steps=3000 \
      --every=250 --local_motion=10 --keypoint_separation=10 \
      --config.train.keypoint_separation_sigma=0.05 [--config.train.local_motion_highpass=1]

Uses (and makes when missing) the main job's synthetic clips in WORKDIR/data. Any config field can
be overridden: --config.model.kp_detector_params.scale_factor=0.5. Prints one line per figure.
"""

from __future__ import annotations


from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/synthetic.py', 'Synthetic job config.',
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', 'runs/diagnose', 'The synthetic clips go here.')
_CHECK = flags.DEFINE_enum('check', 'floors', ['floors', 'motion', 'oracle', 'factors'],
                           'Which figures.')
_FIT_STEPS = flags.DEFINE_integer('fit_steps', 300, 'Adam steps of the free-form warp fitted to '
                                  'each held-out pair (--check=oracle).')
_STEPS = flags.DEFINE_integer('steps', 600, "Training steps of --check=motion.")
_EVERY = flags.DEFINE_integer('every', 200, 'Report every this many steps.')
_LR = flags.DEFINE_float('lr', 1e-3, 'Adam learning rate of --check=motion.')
_TRUTH_MOTION = flags.DEFINE_float('truth_motion', 0., '--check=motion: weight of the L1 between '
                                   'the dense motion and the ground-truth motion (synthetic).')
_TRUTH_KEYPOINTS = flags.DEFINE_float('truth_keypoints', 0., '--check=motion: weight of the L1 '
                                      'between each source keypoint and where the ground-truth '
                                      'motion takes its driving keypoint.')
_MASK_TEACHER = flags.DEFINE_float('mask_teacher', 0., '--check=motion: weight of the cross-entropy '
                                   'between the dense motion\'s mask and, per cell, the candidate '
                                   'motion nearest the ground-truth motion '
                                   '(g3fa_jax.losses.mask_teacher; synthetic).')
_TRUTH_STEPS = flags.DEFINE_integer('truth_steps', 0, '--check=motion: the ground-truth terms act '
                                    'in the first this many steps only (0: all).')
_ZERO_MOTION_WARMUP = flags.DEFINE_integer(
    'zero_motion_warmup', 0, '--check=motion: the dense motion\'s zero-motion channel is withheld '
    'for this many first steps (train.zero_motion_warmup_steps).')
_LOCAL_MOTION = flags.DEFINE_float('local_motion', 0., '--check=motion: weight of each keypoint\'s '
                                   'local warp L1 (g3fa_jax.losses.local_motion).')
_SEPARATION = flags.DEFINE_float('keypoint_separation', 0., '--check=motion: weight of the '
                                 'keypoint separation loss (g3fa_jax.losses.keypoint_separation; '
                                 'its distance: --config.train.keypoint_separation_sigma).')
_LANDMARKS = flags.DEFINE_float('landmarks', 0., '--check=motion: weight of the L1 between the '
                                'first keypoints and the synthetic heads\' facial landmarks '
                                '(g3fa_jax.synthetic.landmarks; demo.motion_warmup_landmarks).')
_STOP_BELOW = flags.DEFINE_float('stop_below', 0., '--check=motion: stop at the first report whose '
                                 'warped source is below this ratio to copying on the training '
                                 'pairs (0: never).')
_EQUIVARIANCE = flags.DEFINE_float('equivariance', 10., 'Weight of the two equivariance losses '
                                   '(--check=motion).')


def down_up(frames, factor: int):
  """(B, H, W, C) -> the same frames through a `factor`x smaller resolution (antialiased
  bilinear down, bilinear up)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  b, h, w, c = frames.shape
  small = jax.image.resize(frames, (b, h // factor, w // factor, c), 'linear', antialias=True)
  return np.asarray(jax.image.resize(small, frames.shape, 'linear'))


def identity_warp(frames, motion_size: int, align_corners: bool):
  """`frames` warped by the zero-motion field of a `motion_size`^2 dense motion network."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models.generator import deform_input  # pylint: disable=g-import-not-at-top
  from g3fa_jax.ops.grid import make_coordinate_grid  # pylint: disable=g-import-not-at-top
  grid = jnp.broadcast_to(make_coordinate_grid((motion_size, motion_size))[None],
                          (frames.shape[0], motion_size, motion_size, 2))
  return np.asarray(deform_input(jnp.asarray(frames), grid, align_corners))


def floors(config) -> None:
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  heldout = lambda predict: job._heldout_mean_l1(predict, config, 64)  # pylint: disable=protected-access
  print(f'held-out L1, copying the source frame: {heldout(lambda s, d: s):.4f}')
  for factor in (2, 4):
    print(f'held-out L1, the driving frame through a {factor}x smaller resolution: '
          f'{heldout(lambda s, d, f=factor: down_up(d, f)):.4f}')
  size = motion_warmup.dense_motion_size(config)
  for align in (False, True):
    print(f'held-out L1, the source warped by zero motion on a {size}x{size} field, '
          f'align_corners={align}: {heldout(lambda s, d, a=align: identity_warp(s, size, a)):.4f}')


def factors(config) -> None:
  """Held-out L1 of each driving frame rendered again with some factors at the source frame's
  values: what those factors' change alone costs."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.synthetic import factors as factors_lib  # pylint: disable=g-import-not-at-top
  held_sets = [(name,) for name in factors_lib.FACTORS]
  held_sets.append(tuple(name for name in factors_lib.FACTORS if name != 'pose'))
  totals = np.zeros(len(held_sets) + 2)
  count = 0
  for record, indices, source, driving in job.heldout_batches(config, 64):
    errors = [np.abs(source - driving).mean(), np.abs(
        factors_lib.rerender(record, indices, ()) - driving).mean()]
    errors += [np.abs(factors_lib.rerender(record, indices, held) - driving).mean()
               for held in held_sets]
    totals += np.array(errors) * len(driving)
    count += len(driving)
  copy = totals[0] / count
  print(f'held-out L1, copying the source frame: {copy:.4f}')
  print(f'held-out L1, the driving frames rendered again (a check: 0): {totals[1] / count:.4f}')
  for held, total in zip(held_sets, totals[2:]):
    what = f'the {held[0]}' if len(held) == 1 else 'every factor but the pose'
    print(f"held-out L1, the driving frames with {what} held at the source frame's: "
          f'{total / count:.4f} ({total / count / copy:.2f}x copying)')


def oracle(config) -> None:
  """Held-out L1 of the source warped by the ground-truth motion and by a fitted free-form one."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import fitted_motion  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import true_motion  # pylint: disable=g-import-not-at-top

  size = int(config.image_size)
  motion_size = motion_warmup.dense_motion_size(config)
  totals = {'copy': 0., 'truth_motion': 0., 'truth_full': 0., 'fitted': 0.}
  count = 0
  for record, driving_idx, source, driving in job.heldout_batches(config, 8):
    for key, grid_size in (('truth_motion', motion_size), ('truth_full', size)):
      warped = true_motion.truly_warped(record, driving_idx, source, grid_size)
      totals[key] += float(np.abs(warped - driving).mean()) * len(driving)
    fitted, _ = fitted_motion.fitted_warp(source, driving, motion_size, _FIT_STEPS.value)
    totals['fitted'] += float(np.abs(fitted - driving).mean()) * len(driving)
    totals['copy'] += float(np.abs(source - driving).mean()) * len(driving)
    count += len(driving)
  copy = totals['copy'] / count
  print(f'held-out L1, copying the source frame: {copy:.4f}')
  for key, text in (('truth_motion', f'warped by the ground-truth motion on a {motion_size}x'
                                     f'{motion_size} grid'),
                    ('truth_full', f'warped by the ground-truth motion on a {size}x{size} grid'),
                    ('fitted', f'warped by a free-form {motion_size}x{motion_size} motion fitted '
                               f'to each pair ({_FIT_STEPS.value} Adam steps)')):
    value = totals[key] / count
    print(f'held-out L1, the source {text}: {value:.4f} ({value / copy:.2f}x copying)')


def motion(config) -> None:
  """Keypoint detector + dense motion network trained on |warp(source) - driving| alone
  (`g3fa_jax.demo.motion_warmup.MotionTrainer`), held-out figures every --every steps."""
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import truth_pairs  # pylint: disable=g-import-not-at-top

  trainer = motion_warmup.MotionTrainer(
      config, learning_rate=_LR.value, equivariance=_EQUIVARIANCE.value,
      zero_motion_warmup=_ZERO_MOTION_WARMUP.value, truth_motion=_TRUTH_MOTION.value,
      truth_keypoints=_TRUTH_KEYPOINTS.value, truth_steps=_TRUTH_STEPS.value,
      local_motion=_LOCAL_MOTION.value, keypoint_separation=_SEPARATION.value,
      landmarks=_LANDMARKS.value, mask_teacher=_MASK_TEACHER.value,
      seed=int(config.seed))
  next_batch = None
  if trainer.needs_truth:
    next_batch = truth_pairs.sampler(config, trainer.motion_size)
  for line in job.train_motion(trainer, config, _STEPS.value, _EVERY.value, next_batch,
                               stop_below=_STOP_BELOW.value):
    print(line, flush=True)


def main(argv) -> None:
  del argv
  from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
  xla_flags.tune_cpu()
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  config = job.resolve_paths(_CONFIG.value, _WORKDIR.value)
  job.prepare_data(config)
  {'floors': floors, 'motion': motion, 'oracle': oracle, 'factors': factors}[_CHECK.value](config)


if __name__ == '__main__':
  app.run(main)
