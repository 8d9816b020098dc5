r"""How far the main job's animated face turns, read by the geometry benchmark's pose reader.

  python benchmarks/animation_turn.py --workdir=runs/synthetic \
      --pose_reader=runs/geometry/pose_reader_400x8_3000.msgpack

The main job (`run_train.py --config=configs/synthetic.py`) animates a held-out face with the
held-out clip whose head turns the most, relative to the driving frame nearest the source's pose
(`g3fa_jax.demo.job.animation_inputs`). This regenerates that animation from the job's last
checkpoint, reads the head pose of every generated and driving frame with the pose reader that
`benchmarks/bench_geometry.py` trains (and caches in its workdir), and prints, per angle, the
range of the pose change the animation should show (the driving head's, relative to the reference
frame), the range the reader sees in the generated frames, and their least-squares turn gain
(`g3fa_jax.metrics.pose.turn_gains`: 1 turns all the way, 0 not at all), with the reader's own
error on the driving frames (an angle that changes by less than twice that error is marked not
meaningful). One clip's animation is a noisy figure (the same recipe's animation turned 0.38 and
0.18 of the way on two kinds of machine, with the same held-out keypoint gain), so it also gives
the turn gain pooled over the job's held-out reconstruction pairs (each driving frame
reconstructed from its clip's first frame, the change read relative to that source frame), with
the real driving frames' gain under the same reader as the ceiling, and two warps of the source
as references: by the synthetic heads' true (rigid) motion, and by a free-form motion at the dense
motion's resolution fitted to each pair with its driving frame in view (--fit_steps Adam steps;
`g3fa_jax.demo.fitted_motion`): the most any warp of that resolution can show the readers, a
bound for a warp-only animator, not a method. The job's config overrides (frame size,
`demo.video_frames`) must be given again here as --job_config.* flags.

With --mouth_reader=FILE it also says whether the mouth opens: a mouth reader
(`g3fa_jax.metrics.mouth`, the pose reader's network with one output) trained on the job's
training clips and their ground-truth mouth opening (written to FILE the first time,
--mouth_steps steps; read from it afterwards) reads every generated and driving frame, and the
opening gain is the least-squares gain of the generated mouth's change on the driving one's, in
the animation (relative to the reference frame) and over the job's held-out reconstruction pairs
(each driving frame reconstructed from its clip's first frame, relative to that source frame).

  python benchmarks/animation_turn.py --workdir=runs/synthetic \
      --pose_reader=runs/geometry/pose_reader_400x8_3000.msgpack \
      --mouth_reader=runs/synthetic/mouth_reader_3000.msgpack
"""

from __future__ import annotations

import json
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

_JOB_CONFIG = config_flags.DEFINE_config_file('job_config', 'configs/synthetic.py',
                                              'The main job\'s config.', lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', 'runs/synthetic', 'The main job\'s workdir.')
_POSE_READER = flags.DEFINE_string('pose_reader', None, 'Pose reader variables (msgpack) written '
                                   'by benchmarks/bench_geometry.py in its workdir.')
_MOUTH_READER = flags.DEFINE_string(
    'mouth_reader', None, 'Mouth reader variables (msgpack); trained on the job\'s training '
    'clips and written there if the file does not exist. Unset: no mouth figures.')
_MOUTH_STEPS = flags.DEFINE_integer('mouth_steps', 3000, 'Training steps of a new mouth reader.')
_FIT_STEPS = flags.DEFINE_integer(
    'fit_steps', 300, 'Adam steps of the free-form warp fitted to each held-out pair with its '
    'driving frame in view (g3fa_jax.demo.fitted_motion): what the best warp at the dense '
    'motion\'s resolution shows the readers.')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the figures to this JSON file.')


def heldout_reconstructions(config, animator, fit_steps: int) -> dict:
  """The job's held-out reconstruction pairs (each driving frame reconstructed from its clip's
  first frame): 'source', 'driving', 'prediction' (N, H, W, 3) in [0, 1], 'true_warp' (the source
  warped by the true, rigid head motion on the dense motion's grid), 'mouth_warp' (by the true
  motion with the mouth's opening, `g3fa_jax.synthetic.flow.jaw_drop`), 'fitted_warp' (warped by a
  free-form motion on that grid fitted to the pair with the driving frame in view, `fit_steps`
  Adam steps: the best any warp at that resolution can show) and the ground truth of both frames
  of each pair: 'source_pose', 'driving_pose' (N, 3) yaw, pitch, roll in degrees,
  'source_mouth', 'driving_mouth' (N,) opening in [0, 1]."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import fitted_motion  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import true_motion  # pylint: disable=g-import-not-at-top
  grid_size = motion_warmup.dense_motion_size(config)
  parts = {k: [] for k in ('source', 'driving', 'prediction', 'true_warp', 'mouth_warp',
                           'fitted_warp',
                           'source_pose', 'driving_pose', 'source_mouth', 'driving_mouth')}
  for record, idx, source, driving in job.heldout_batches(config, 8):
    poses = job.clip_poses(record)
    mouth = np.asarray(record['synthetic']['mouth'], np.float32)
    parts['source'].append(source)
    parts['driving'].append(driving)
    parts['prediction'].append(np.asarray(animator.reconstruct(source, driving)['prediction']))
    parts['true_warp'].append(true_motion.truly_warped(record, idx, source, grid_size))
    parts['mouth_warp'].append(true_motion.truly_warped(record, idx, source, grid_size,
                                                        with_mouth=True))
    parts['fitted_warp'].append(
        fitted_motion.fitted_warp(source, driving, grid_size, fit_steps)[0])
    parts['source_pose'].append(np.repeat(poses[:1], len(idx), axis=0))
    parts['driving_pose'].append(poses[idx])
    parts['source_mouth'].append(np.repeat(mouth[:1], len(idx)))
    parts['driving_mouth'].append(mouth[idx])
  return {k: np.concatenate(v) for k, v in parts.items()}


def reconstruction_turn(reader, pairs: dict) -> dict:
  """The pose reader over the held-out reconstructions, pooled over every pair: per angle the
  turn gain of the generated frames (their read change from the read source frame against the
  true change), the same for the real driving frames (the ceiling the reader allows) and the
  reader's error on them, and the gains of three warps of the source: by the true motion (what
  the reader sees of the head's rigid motion), by the true motion with the mouth's opening, and
  by a free-form motion fitted to each pair with its driving frame in view (what the best warp at
  that resolution shows). One clip's animation is a noisy figure; this is over all held-out
  clips."""
  from g3fa_jax.metrics import pose  # pylint: disable=g-import-not-at-top
  read_source = pose.predict_pose(reader, pairs['source'])
  read_real = pose.predict_pose(reader, pairs['driving'])
  wanted = pairs['driving_pose'] - pairs['source_pose']
  read_generated = pose.predict_pose(reader, pairs['prediction'])
  generated = pose.pooled_change_gains(read_generated - read_source, wanted)
  real = pose.pooled_change_gains(read_real - read_source, wanted)
  warp = pose.pooled_change_gains(pose.predict_pose(reader, pairs['true_warp']) - read_source,
                                  wanted)
  mouth_warp = pose.pooled_change_gains(
      pose.predict_pose(reader, pairs['mouth_warp']) - read_source, wanted)
  fitted = pose.pooled_change_gains(
      pose.predict_pose(reader, pairs['fitted_warp']) - read_source, wanted)
  floor = pose.pose_errors_degrees(read_real, pairs['driving_pose'])
  return {'pairs': len(wanted), 'angles': {
      name: {'target_change_deg': [float(wanted[:, k].min()), float(wanted[:, k].max())],
             'turn_gain': float(generated[k]), 'turn_gain_of_driving': float(real[k]),
             'turn_gain_of_true_warp': float(warp[k]),
             'turn_gain_of_mouth_warp': float(mouth_warp[k]),
             'turn_gain_of_fitted_warp': float(fitted[k]),
             'reader_error_on_driving_deg': floor[name]}
      for k, name in enumerate(('yaw', 'pitch', 'roll'))}}


def mouth_figures(config, inputs, generated, pairs: dict, reader_path: str, steps: int) -> dict:
  """The mouth reader's figures: opening gain of the animation and of the held-out
  reconstructions `pairs` (`heldout_reconstructions`), the openings' ranges and the reader's
  error on real held-out frames."""
  import time  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import mouth  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import pose  # pylint: disable=g-import-not-at-top

  def fit():
    start = time.time()
    images, openings = job.frames_and_truth(config, 'train', ('mouth',))
    variables = mouth.train_mouth_reader(images, openings[:, 0], steps=steps)
    print(f'mouth reader: {len(images)} training frames, {steps} steps, '
          f'{time.time() - start:.0f} s', flush=True)
    return variables

  reader = pose.cached_reader(reader_path, fit)
  ref = inputs.reference
  read_generated = mouth.read_mouth(reader, np.asarray(generated))
  read_driving = mouth.read_mouth(reader, inputs.driving)
  animation = {
      'target_change': [float(np.min(inputs.driving_mouth - inputs.driving_mouth[ref])),
                        float(np.max(inputs.driving_mouth - inputs.driving_mouth[ref]))],
      'generated_change': [float(np.min(read_generated - read_generated[ref])),
                           float(np.max(read_generated - read_generated[ref]))],
      'opening_gain': mouth.opening_gain(read_generated, inputs.driving_mouth, ref),
      # What the reader gives the real driving frames: the gain of a perfect animation.
      'opening_gain_of_driving': mouth.opening_gain(read_driving, inputs.driving_mouth, ref),
      'reader_error_on_driving': float(np.abs(read_driving - inputs.driving_mouth).mean())}
  # Held-out reconstructions: the generated mouth's change from the source frame's against the
  # driving frame's, pooled over every pair.
  read_source = mouth.read_mouth(reader, pairs['source'])
  read_real = mouth.read_mouth(reader, pairs['driving'])
  wanted = (pairs['driving_mouth'] - pairs['source_mouth'])[:, None]
  moved = (mouth.read_mouth(reader, pairs['prediction']) - read_source)[:, None]
  moved_by_warp = (mouth.read_mouth(reader, pairs['true_warp']) - read_source)[:, None]
  moved_by_mouth_warp = (mouth.read_mouth(reader, pairs['mouth_warp']) - read_source)[:, None]
  moved_by_fit = (mouth.read_mouth(reader, pairs['fitted_warp']) - read_source)[:, None]
  reconstruction = {
      'pairs': len(wanted),
      'target_change': [float(wanted.min()), float(wanted.max())],
      'opening_gain': float(pose.pooled_change_gains(moved, wanted)[0]),
      'opening_gain_of_driving': float(
          pose.pooled_change_gains((read_real - read_source)[:, None], wanted)[0]),
      'opening_gain_of_true_warp': float(pose.pooled_change_gains(moved_by_warp, wanted)[0]),
      'opening_gain_of_mouth_warp': float(
          pose.pooled_change_gains(moved_by_mouth_warp, wanted)[0]),
      'opening_gain_of_fitted_warp': float(pose.pooled_change_gains(moved_by_fit, wanted)[0]),
      'reader_error_on_driving': float(np.abs(read_real - pairs['driving_mouth']).mean())}
  return {'animation': animation, 'reconstruction': reconstruction}


def main(argv) -> None:
  del argv
  import flax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.inference.animator import Animator  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import pose  # pylint: disable=g-import-not-at-top

  workdir = pathlib.Path(_WORKDIR.value)
  reader_path = pathlib.Path(_POSE_READER.value or '')
  if not reader_path.is_file():
    raise SystemExit(f'--pose_reader={_POSE_READER.value}: no such file. Run '
                     'benchmarks/bench_geometry.py once (it writes pose_reader_*.msgpack into '
                     'its --workdir) and name that file.')
  checkpoints = workdir / job.CHECKPOINT_DIR
  if not checkpoints.is_dir():
    raise SystemExit(f'--workdir={workdir}: no {job.CHECKPOINT_DIR}/ there. Run the main job '
                     f'first: python run_train.py --config=configs/synthetic.py --workdir={workdir}')
  config = job.resolve_paths(_JOB_CONFIG.value, workdir)
  inputs = job.animation_inputs(config)
  if inputs.driving_poses is None or inputs.source_pose is None:
    raise SystemExit(f'{workdir}: the held-out clips carry no ground-truth poses')
  reader = flax.serialization.msgpack_restore(reader_path.read_bytes())
  animator = Animator.from_checkpoint(checkpoints)
  generated = animator.animate(inputs.source, inputs.driving, initial_frame=inputs.reference)
  read_generated = pose.predict_pose(reader, np.asarray(generated))
  read_driving = pose.predict_pose(reader, inputs.driving)
  gains = pose.turn_gains(read_generated, inputs.driving_poses, inputs.reference)
  wanted = inputs.driving_poses - inputs.driving_poses[inputs.reference]
  moved = read_generated - read_generated[inputs.reference]
  floor = pose.pose_errors_degrees(read_driving, inputs.driving_poses)
  print(f'{workdir}: source {inputs.source_identity} driven by {inputs.driving_identity} '
        f'({len(inputs.driving)} frames, relative to frame {inputs.reference})')
  result = {'workdir': str(workdir), 'frames': len(inputs.driving),
            'reference_frame': inputs.reference, 'angles': {}}
  for k, name in enumerate(('yaw', 'pitch', 'roll')):
    row = {'target_change_deg': [float(wanted[:, k].min()), float(wanted[:, k].max())],
           'generated_change_deg': [float(moved[:, k].min()), float(moved[:, k].max())],
           'turn_gain': gains[name], 'reader_error_on_driving_deg': floor[name]}
    # A gain over a change smaller than twice the reader's own error measures the reader.
    row['meaningful'] = bool(np.ptp(wanted[:, k]) > 2 * floor[name])
    result['angles'][name] = row
    print(f'{name:5s}: driving head {row["target_change_deg"][0]:+.1f}..'
          f'{row["target_change_deg"][1]:+.1f} deg, generated face {row["generated_change_deg"][0]:+.1f}..'
          f'{row["generated_change_deg"][1]:+.1f} deg: turn gain {gains[name]:.2f} (the reader is '
          f'{floor[name]:.1f} deg off on the driving frames'
          f'{"" if row["meaningful"] else "; the change is within its error: not meaningful"})')
  pairs = heldout_reconstructions(config, animator, _FIT_STEPS.value)
  result['reconstruction'] = reconstruction_turn(reader, pairs)
  yaw = result['reconstruction']['angles']['yaw']
  print(f'over {result["reconstruction"]["pairs"]} held-out reconstructions (yaw changes '
        f'{yaw["target_change_deg"][0]:+.1f}..{yaw["target_change_deg"][1]:+.1f} deg from the '
        f'source frame): yaw turn gain {yaw["turn_gain"]:.2f} (the real driving frames read by '
        f'the same reader: {yaw["turn_gain_of_driving"]:.2f}; it is '
        f'{yaw["reader_error_on_driving_deg"]:.1f} deg off on them; the source warped by the '
        f'true (rigid) motion: {yaw["turn_gain_of_true_warp"]:.2f}; warped by a motion '
        f'fitted to each pair with its driving frame in view, the best warp: '
        f'{yaw["turn_gain_of_fitted_warp"]:.2f})')
  if _MOUTH_READER.value:
    if inputs.driving_mouth is None:
      raise SystemExit(f'{workdir}: the held-out clips carry no ground-truth mouth opening')
    result['mouth'] = mouth_figures(config, inputs, generated, pairs, _MOUTH_READER.value,
                                    _MOUTH_STEPS.value)
    a, r = result['mouth']['animation'], result['mouth']['reconstruction']
    print(f'mouth (opening 0..1): in the animation the driving mouth changes by '
          f'{a["target_change"][0]:+.2f}..{a["target_change"][1]:+.2f}, the generated one by '
          f'{a["generated_change"][0]:+.2f}..{a["generated_change"][1]:+.2f}: opening gain '
          f'{a["opening_gain"]:.2f} (the real driving frames read by the same reader: '
          f'{a["opening_gain_of_driving"]:.2f}); over {r["pairs"]} held-out reconstructions '
          f'(changes {r["target_change"][0]:+.2f}..{r["target_change"][1]:+.2f} from the '
          f'source frame): {r["opening_gain"]:.2f} (real frames: '
          f'{r["opening_gain_of_driving"]:.2f}; the source warped by the true motion: '
          f'{r["opening_gain_of_true_warp"]:.2f}, with the mouth\'s opening '
          f'{r["opening_gain_of_mouth_warp"]:.2f}; by a fitted motion: '
          f'{r["opening_gain_of_fitted_warp"]:.2f}); the reader is '
          f'{r["reader_error_on_driving"]:.3f} off on real held-out frames')
  if _JSON_OUT.value:
    pathlib.Path(_JSON_OUT.value).write_text(json.dumps(result, indent=1) + '\n')


if __name__ == '__main__':
  app.run(main)
