"""Does guidance by depth and normals help? The synthetic recipe trained in three geometry modes,
judged on held-out synthetic heads against their ground truth.

  python benchmarks/bench_geometry.py --workdir=runs/geometry --steps=4000
  python benchmarks/bench_geometry.py --workdir=runs/geometry --steps=20 --modes=none  # smoke run

Modes, with the same seed, data, motion warm-up (run once, shared) and schedule
(configs/synthetic.py, num_train_steps=--steps, the learning rate x0.1 at 40 % and 80 % of them):
  none            no geometry discriminators (ensemble.w_depth = w_normal = 0);
  detached        the official code (depth and normal of a stop-gradient generated frame);
  differentiable  the paper (gradients through the frozen inverse renderer into the generator).
For each, on the held-out clips (source = first frame, 8 driving frames per clip), against the
driving frame: reconstruction L1, PSNR, SSIM; geometry: depth L1 on the face mask and normal angle
(degrees) between a geometry reader's maps of the generated frame and the driving frame's ground
truth; pose: yaw/pitch/roll error (degrees) read by a small pose regressor. Both readers are
fixed networks trained once (cached in WORKDIR) on the training clips and on --reader_clips clips
of new people rendered for them (none of the held-out people): the geometry reader is Unsup3D's
depth net fitted to their depth (--geometry_reader_steps; 0: the job's inverse renderer), the pose
reader fitted to their ground-truth poses. Rows 'no motion' (the source frame as the prediction)
and 'real driving frame' (the metric's floor) come first. Each mode's training resumes when run
again; the table goes to WORKDIR/geometry.md and WORKDIR/geometry.json (after each mode), each
mode's learning curve (held-out L1 and true-motion figures at each checkpoint) to
WORKDIR/MODE/learning_curve.json and .png, and the modes' curves side by side to WORKDIR/curves.md.
"""

from __future__ import annotations

import functools
import json
import os
import time

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/synthetic.py', 'Synthetic recipe.',
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', 'runs/geometry', 'Data, runs and the table go here.')
_STEPS = flags.DEFINE_integer('steps', 4000, 'Training steps per mode.')
_MODES = flags.DEFINE_list('modes', ['none', 'detached', 'differentiable'], 'Geometry modes.')
_FRAMES = flags.DEFINE_integer('frames_per_clip', 8, 'Driving frames per held-out clip.')
_POSE_STEPS = flags.DEFINE_integer('pose_steps', 3000, 'Training steps of the pose regressor.')
_READER_CLIPS = flags.DEFINE_integer(
    'reader_clips', 400, 'Clips of new people (none of the data set\'s) rendered to train the '
    'readers, besides the training clips.')
_READER_FRAMES = flags.DEFINE_integer('reader_frames', 8, 'Frames per reader clip.')
_GEOMETRY_READER_STEPS = flags.DEFINE_integer(
    'geometry_reader_steps', 1500, 'Steps of the geometry reader (the Unsup3D depth net fitted '
    'to the reader and training frames); 0: read with the inverse renderer G3FA trains with.')

MODES = ('none', 'detached', 'differentiable')


def mode_config(config, mode: str, steps: int):
  """The recipe for one geometry mode, trained for `steps` steps."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict(config.to_dict())
  if mode not in MODES:
    raise ValueError(f'mode {mode!r}: use one of {MODES}')
  if mode == 'none':
    config.ensemble.w_depth = 0.
    config.ensemble.w_normal = 0.
  else:
    config.train.geometry_mode = mode
  config.train.num_epochs = 10
  config.train.steps_per_epoch = max(1, steps // 10)
  config.train.num_train_steps = steps
  config.train.epoch_milestones = (4, 8)
  config.train.checkpoint_every_steps = max(1, steps // 5)
  return config


def heldout_set(config, frames_per_clip: int):
  """Held-out (source, driving, gt depth, gt normal, gt angles) arrays over every test clip."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.synthetic import dataset  # pylint: disable=g-import-not-at-top
  clips = job._split_source(config, 'test')  # pylint: disable=protected-access
  parts = {k: [] for k in ('source', 'driving', 'depth', 'normal', 'angles')}
  for c in range(len(clips)):
    record = clips[c]
    n = record['num_frames']
    idx = np.unique(np.linspace(1, n - 1, frames_per_clip).round().astype(int))
    frames = job._decode_frames(record, [0] + list(idx))  # pylint: disable=protected-access
    depth, normal = dataset.read_geometry(record, idx)
    s = record['synthetic']
    parts['source'].append(np.repeat(frames[:1], len(idx), axis=0))
    parts['driving'].append(frames[1:])
    parts['depth'].append(depth)
    parts['normal'].append(normal)
    parts['angles'].append(np.stack([np.asarray(s[k])[idx] for k in ('yaw', 'pitch', 'roll')], 1))
  return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items()}


def score(prediction, held, geometry_fn, pose_fn) -> dict:
  """Every metric of one set of predictions (N, H, W, 3) against the held-out set."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import geometry  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import pixel  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import pose  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import ssim  # pylint: disable=g-import-not-at-top
  from g3fa_jax.synthetic import dataset  # pylint: disable=g-import-not-at-top
  driving = held['driving']
  p, d = jnp.asarray(prediction), jnp.asarray(driving)
  depth, normal = geometry_fn(prediction)
  mask = dataset.foreground_mask(held['depth'])[..., 0]
  out = {'l1': float(np.abs(prediction - driving).mean()),
         'psnr': float(np.mean(np.asarray(pixel.psnr(p, d)))),
         'ssim': float(np.mean(np.asarray(ssim.ssim(p, d)))),
         'depth_l1': geometry.masked_depth_l1(depth, held['depth'], mask, job.DEPTH_TARGET_RANGE),
         'normal_degrees': geometry.normal_angle_degrees(normal, held['normal'], mask)}
  out.update({f'{k}_degrees': v for k, v in
              pose.pose_errors_degrees(pose_fn(prediction), held['angles']).items()})
  return out


COLUMNS = (('l1', 'L1', '.4f'), ('psnr', 'PSNR dB', '.2f'), ('ssim', 'SSIM', '.3f'),
           ('depth_l1', 'depth L1 (mask)', '.4f'), ('normal_degrees', 'normal °', '.1f'),
           ('yaw_degrees', 'yaw °', '.1f'), ('pitch_degrees', 'pitch °', '.1f'),
           ('roll_degrees', 'roll °', '.1f'))


def markdown_table(rows: dict[str, dict]) -> str:
  lines = ['| | ' + ' | '.join(title for _, title, _ in COLUMNS) + ' |',
           '| --- |' + ' ---: |' * len(COLUMNS)]
  for name, values in rows.items():
    lines.append(f'| {name} | ' + ' | '.join(format(values[k], f) for k, _, f in COLUMNS) + ' |')
  return '\n'.join(lines)


def write_table(workdir: str, rows: dict[str, dict], settings: dict) -> None:
  """WORKDIR/geometry.md (the table of `rows`) and geometry.json (`settings` and `rows`), each
  written to a temporary name first."""
  for name, text in (('geometry.json', json.dumps({**settings, 'rows': rows}, indent=2)),
                     ('geometry.md', markdown_table(rows))):
    path = os.path.join(workdir, name)
    with open(path + '.tmp', 'w') as f:
      f.write(text + '\n')
    os.replace(path + '.tmp', path)


def curves_table(workdir: str, modes) -> str:
  """The modes' learning curves side by side (from WORKDIR/MODE/learning_curve.json): at each
  checkpoint, the held-out L1 (and its ratio to copying the source) and the dense and keypoint
  gains against the true motion, one column per mode that has a curve."""
  curves = {}
  for mode in modes:
    path = os.path.join(workdir, mode, 'learning_curve.json')
    if os.path.exists(path):
      with open(path) as f:
        curves[mode] = json.load(f)
  if not curves:
    return ''
  steps = sorted({int(s) for c in curves.values() for s in c.get('heldout_l1', {})})

  def cell(curve, step):
    l1 = curve.get('heldout_l1', {}).get(str(step))
    if l1 is None:
      return '–'
    text = f'{l1:.4f} ({l1 / curve["source_copy_heldout_l1"]:.2f}×)'
    motion = curve.get('true_motion', {}).get(str(step))
    if motion:
      text += f'; {motion["gain"]:.2f} / {motion["keypoint_gain"]:.2f}'
    return text

  lines = ['| step | ' + ' | '.join(curves) + ' |', '| ---: |' + ' --- |' * len(curves)]
  lines += [f'| {step} | ' + ' | '.join(cell(c, step) for c in curves.values()) + ' |'
            for step in steps]
  return '\n'.join(lines)


def write_curves(workdir: str, modes) -> None:
  """WORKDIR/curves.md: `curves_table`, written to a temporary name first."""
  path = os.path.join(workdir, 'curves.md')
  with open(path + '.tmp', 'w') as f:
    f.write('Held-out L1 (ratio to copying the source); dense / keypoint gain against the true '
            'motion\n\n' + curves_table(workdir, modes) + '\n')
  os.replace(path + '.tmp', path)


def main(argv) -> None:
  del argv
  from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
  xla_flags.tune_cpu()
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  from g3fa_jax.inference.animator import Animator  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import pose  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models import inverse_renderer  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models import networks  # pylint: disable=g-import-not-at-top
  from g3fa_jax.synthetic import dataset  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import pretrained  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import trainer  # pylint: disable=g-import-not-at-top

  workdir = os.path.abspath(_WORKDIR.value)
  os.makedirs(workdir, exist_ok=True)
  base = job.resolve_paths(_CONFIG.value, workdir)
  job.prepare_data(base)
  job.prepare_inverse_renderer(base)
  job.prepare_vgg19(base)
  # The recipe's motion warm-up, once: every mode starts from the same keypoints and motion.
  motion = job.prepare_motion(base, workdir)
  held = heldout_set(base, _FRAMES.value)

  # The readers: fixed networks trained on new people's frames besides the training clips (never
  # on the held-out people), as AKD's landmark detector is trained on other faces.
  reader_name = f'{_READER_CLIPS.value}x{_READER_FRAMES.value}'

  @functools.cache
  def reader():
    if _READER_CLIPS.value <= 0:
      return None
    start = time.time()
    frames = dataset.reader_frames(job.settings_from_config(base), _READER_CLIPS.value,
                                   _READER_FRAMES.value)
    print(f'reader frames: {len(frames["image"])} of {_READER_CLIPS.value} new people, '
          f'{time.time() - start:.0f} s', flush=True)
    return frames

  unsup3d = networks.build_network('unsup3d', base)
  if _GEOMETRY_READER_STEPS.value > 0:
    def fit_geometry_reader():
      images, depths = job.depth_training_set(base)
      if reader() is not None:
        images = np.concatenate([images, reader()['image']])
        depths = np.concatenate([depths, reader()['depth'][..., 0]])
      return job.fit_depth_network(base, images, depths, _GEOMETRY_READER_STEPS.value,
                                   what='Geometry reader')
    unsup3d_variables = pose.cached_reader(
        os.path.join(workdir, f'geometry_reader_{reader_name}_{_GEOMETRY_READER_STEPS.value}'
                     '.msgpack'),
        fit_geometry_reader)
  else:
    unsup3d_variables = pretrained.frozen_variables(base)['unsup3d']
  geometry_jit = jax.jit(lambda v, x: inverse_renderer.unsup3d_depth_and_normal(
      unsup3d.apply, v, x, base.unsup3d))

  def geometry_fn(images):
    outs = [geometry_jit(unsup3d_variables, images[i:i + 64]) for i in range(0, len(images), 64)]
    return (np.concatenate([np.asarray(o[0]) for o in outs]),
            np.concatenate([np.asarray(o[1]) for o in outs]))

  def fit_pose_reader():
    start = time.time()
    images, angles = job.frames_and_truth(base, 'train', ('yaw', 'pitch', 'roll'))
    if reader() is not None:
      images = np.concatenate([images, reader()['image']])
      angles = np.concatenate([angles, reader()['angles']])
    variables = pose.train_pose_regressor(images, angles, steps=_POSE_STEPS.value)
    print(f'pose regressor: {len(images)} training frames, {time.time() - start:.0f} s',
          flush=True)
    return variables

  pose_variables = pose.cached_reader(
      os.path.join(workdir, f'pose_reader_{reader_name}_{_POSE_STEPS.value}.msgpack'),
      fit_pose_reader)

  def pose_fn(images):
    return pose.predict_pose(pose_variables, images)

  settings = {'steps': _STEPS.value, 'held_out_frames': int(len(held['driving'])),
              'reader_clips': _READER_CLIPS.value, 'reader_frames': _READER_FRAMES.value,
              'pose_steps': _POSE_STEPS.value,
              'geometry_reader_steps': _GEOMETRY_READER_STEPS.value}
  rows = {'no motion (source frame)': score(held['source'], held, geometry_fn, pose_fn),
          'real driving frame (floor)': score(held['driving'], held, geometry_fn, pose_fn)}
  # The floors alone (all there is with --modes= , which only trains the readers).
  write_table(workdir, rows, settings)
  for mode in _MODES.value:
    config = mode_config(base, mode, _STEPS.value)
    run_dir = os.path.join(workdir, mode)
    start = time.time()
    # Each checkpoint adds a point to the mode's learning curve (held-out L1 and how the motion
    # follows the true one: run_dir/learning_curve.json and .png, as the main job's).
    trainer.train(config, run_dir, on_checkpoint=job.LearningCurve(config, run_dir).on_checkpoint,
                  initialise=None if motion is None else (
                      lambda state: motion_warmup.into_state(state, motion)))
    animator = Animator.from_checkpoint(os.path.join(run_dir, 'checkpoints'))
    generated = np.concatenate([
        animator.reconstruct(held['source'][i:i + 16], held['driving'][i:i + 16])['prediction']
        for i in range(0, len(held['driving']), 16)])
    rows[f'G3FA, geometry {mode}'] = score(generated, held, geometry_fn, pose_fn)
    print(f'{mode}: trained and scored in {time.time() - start:.0f} s', flush=True)
    # After each mode, so that a run stopped before the last leaves the modes it finished.
    write_table(workdir, rows, settings)
    write_curves(workdir, _MODES.value)
  print(markdown_table(rows))
  print(curves_table(workdir, _MODES.value))
  print(f'wrote {os.path.join(workdir, "geometry.md")}')


if __name__ == '__main__':
  app.run(main)
