r"""What the keypoint detector can see, and what a trained one carries: the head pose and the
mouth opening, read from frames reduced as a network with a given `scale_factor` reduces its
input, and read linearly from a checkpoint's keypoints.

  python benchmarks/detector_view.py --workdir=runs/synthetic --scales=0.25,0.5,1
  python benchmarks/detector_view.py --workdir=runs/synthetic --scales= \
      --checkpoints=runs/synthetic/checkpoints

FOMM's keypoint detector and dense motion network blur and subsample their input by
`scale_factor` (0.25 in the official config, meant for 256x256 frames; on the main job's 64x64
frames that leaves 16x16). Whatever those views do not show, no keypoint can carry. For each scale
this trains the pose reader and the mouth reader of the benchmarks (`g3fa_jax.metrics.pose` and
`.mouth`, same networks and steps for every scale) on the main job's training frames as that view
(`g3fa_jax.ops.antialias.detector_view`), and prints their error on the held-out clips' views
against the error of always answering the training median, with R^2 (1: read exactly, 0: no
better than the mean, below 0: worse). Needs the main job's data (WORKDIR/data, written by its
first step).

With --checkpoints (the main job's checkpoint directories, each of any run on the same data and
frame size) it also gives, per checkpoint, the held-out R^2 of a linear probe
(`g3fa_jax.metrics.linear_probe`: ridge regression fitted on the training clips) from the change
of the keypoints (positions and jacobians) since each clip's first frame to the change of yaw,
pitch, roll and mouth opening: how much of the turn and of the mouth the keypoints know, whatever
the warp then shows of it.
"""

import json
import pathlib
import time

from absl import app
from absl import flags
from ml_collections import config_flags

_JOB_CONFIG = config_flags.DEFINE_config_file('job_config', 'configs/synthetic.py',
                                              'The main job\'s config.', lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', 'runs/synthetic', 'The main job\'s workdir (its data/).')
_SCALES = flags.DEFINE_list('scales', ['0.25', '0.5', '1'], 'Scale factors of the views.')
_STEPS = flags.DEFINE_integer('steps', 1500, 'Training steps of each reader.')
_CHECKPOINTS = flags.DEFINE_list('checkpoints', [], 'Checkpoint directories whose keypoints are '
                                 'probed (their last step).')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the figures to this JSON file.')

QUANTITIES = ('yaw', 'pitch', 'roll', 'mouth')


def readability(read, truth, train_truth) -> dict:
  """Held-out figures of one quantity: mean absolute error of the reader, of the training
  median, and R^2 (1 - mean squared error / variance of the truth)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import linear_probe  # pylint: disable=g-import-not-at-top
  read, truth = np.asarray(read, np.float64), np.asarray(truth, np.float64)
  constant = float(np.median(train_truth))
  return {'error': float(np.abs(read - truth).mean()),
          'median_error': float(np.abs(truth - constant).mean()),
          'r2': float(linear_probe.r_squared(read, truth))}


def keypoint_probe(directory, train_x, train_y, test_x, test_y, clip_length: int) -> dict:
  """Held-out R^2 per quantity of the linear probe from a checkpoint's keypoints."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.inference.animator import Animator  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import linear_probe  # pylint: disable=g-import-not-at-top
  if not pathlib.Path(directory).is_dir():
    raise SystemExit(f'--checkpoints: {directory} is not a directory (a run\'s checkpoints/)')
  animator = Animator.from_checkpoint(directory)

  def keypoint_changes(images):
    rows = []
    for i in range(0, len(images), 64):
      keypoints = animator.keypoints(images[i:i + 64])
      rows.append(np.concatenate([np.asarray(v).reshape(len(images[i:i + 64]), -1)
                                  for _, v in sorted(keypoints.items())], 1))
    return linear_probe.changes_since_first(np.concatenate(rows), clip_length)

  r2 = linear_probe.ridge_probe_r2(
      keypoint_changes(train_x), linear_probe.changes_since_first(train_y, clip_length),
      keypoint_changes(test_x), linear_probe.changes_since_first(test_y, clip_length))
  return {name: float(v) for name, v in zip(QUANTITIES, r2)}


def main(argv) -> None:
  del argv
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import mouth, pose  # pylint: disable=g-import-not-at-top
  from g3fa_jax.ops import antialias  # pylint: disable=g-import-not-at-top

  workdir = pathlib.Path(_WORKDIR.value)
  config = job.resolve_paths(_JOB_CONFIG.value, workdir)
  if not pathlib.Path(config.data.data_dir).is_dir():
    raise SystemExit(f'--workdir={workdir}: no data in {config.data.data_dir}. Run the main job '
                     f'first (python run_train.py --config=configs/synthetic.py '
                     f'--workdir={workdir}); its first step writes the data.')
  train_x, train_y = job.frames_and_truth(config, 'train', QUANTITIES)
  test_x, test_y = job.frames_and_truth(config, 'test', QUANTITIES)
  print(f'{len(train_x)} training frames, {len(test_x)} held-out frames '
        f'({train_x.shape[1]}x{train_x.shape[2]}), {_STEPS.value} steps per reader')

  def view(images, scale):
    return np.concatenate([np.asarray(antialias.detector_view(jnp.asarray(images[i:i + 256]),
                                                              scale))
                           for i in range(0, len(images), 256)])

  result = {'workdir': str(workdir), 'steps': _STEPS.value, 'scales': {}}
  for scale in map(float, _SCALES.value):
    start = time.time()
    train_view, test_view = view(train_x, scale), view(test_x, scale)
    pose_reader = pose.train_pose_regressor(train_view, train_y[:, :3], steps=_STEPS.value)
    mouth_reader = mouth.train_mouth_reader(train_view, train_y[:, 3], steps=_STEPS.value)
    read = np.concatenate([pose.predict_pose(pose_reader, test_view),
                           mouth.read_mouth(mouth_reader, test_view)[:, None]], 1)
    figures = {name: readability(read[:, k], test_y[:, k], train_y[:, k])
               for k, name in enumerate(QUANTITIES)}
    size = int(round(train_x.shape[1] * scale))
    result['scales'][str(scale)] = {'view': size, **figures}
    print(f'scale {scale} ({size}x{size} view, {time.time() - start:.0f} s): ' + '; '.join(
        f'{name} error {f["error"]:.3g} (median {f["median_error"]:.3g}), R^2 {f["r2"]:.2f}'
        for name, f in figures.items()), flush=True)
  for directory in _CHECKPOINTS.value:
    figures = keypoint_probe(directory, train_x, train_y, test_x, test_y,
                             int(config.synthetic.frames))
    result.setdefault('keypoint_probe', {})[directory] = figures
    print(f'{directory}: linear probe from the keypoints\' change, held-out R^2: ' + ', '.join(
        f'{name} {r2:.2f}' for name, r2 in figures.items()), flush=True)
  if _JSON_OUT.value:
    pathlib.Path(_JSON_OUT.value).write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
  app.run(main)
