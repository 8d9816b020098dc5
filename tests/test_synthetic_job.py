"""The synthetic main job (`g3fa_jax.demo.job`, `configs/synthetic.py`) end to end, tiny."""

import json
import os
import pathlib

import av
import numpy as np
import pytest
from PIL import Image

from g3fa_jax import checkpoint as ckpt
from g3fa_jax import model_config
from g3fa_jax.animate import video
from g3fa_jax.demo import job
from g3fa_jax.demo import true_motion
from g3fa_jax.synthetic import dataset as synthetic_dataset

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_config():
  return model_config.load_config(str(ROOT / 'configs' / 'synthetic.py'))


def tiny_job_config():
  config = _load_config()
  config.batch_size = 2
  config.train.num_epochs = 1
  config.train.steps_per_epoch = 2
  config.train.checkpoint_every_steps = 2
  config.train.log_every_steps = 1
  config.train.image_summary_every_steps = 0
  config.synthetic.update(videos=4, frames=4, workers=0)
  config.demo.update(unsup3d_steps=3, unsup3d_batch_size=2, unsup3d_frames_per_clip=2,
                     eval_clips=1, eval_frames=2, video_frames=3, motion_warmup_steps=4,
                     motion_warmup_zero_motion_steps=2)
  return config


@pytest.fixture(scope='module')
def finished_job(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('synthetic_job')
  config = tiny_job_config()
  result = job.run(config, workdir)
  return config, workdir, result


def test_config_defaults_are_consistent():
  config = _load_config()
  assert config.image_size == 64
  assert not config.pretrained.use_random_weights
  resolved = job.resolve_paths(config, '/tmp/w')
  assert resolved.data.data_dir == '/tmp/w/data'
  assert resolved.pretrained.unsup3d == '/tmp/w/unsup3d'
  assert resolved.pretrained.vgg19 == '/tmp/w/vgg19_random'


def test_job_writes_every_output(finished_job):
  config, workdir, result = finished_job
  # Data, inverse renderer (orbax item 'unsup3d'), random VGG19, training checkpoint.
  assert (workdir / 'data' / 'index.json').is_file()
  meta, _ = ckpt.read_config(workdir / 'unsup3d')
  assert meta['items'] == ['unsup3d']
  meta, _ = ckpt.read_config(workdir / 'vgg19_random')
  assert meta['items'] == ['vgg19']
  _, step = ckpt.read_config(workdir / 'checkpoints')
  assert step == 2
  assert (workdir / 'motion_warmup.msgpack').is_file()
  assert any((workdir / 'tensorboard').iterdir())
  # eval.json.
  saved = json.loads((workdir / 'eval.json').read_text())
  assert saved['start']['step'] == 0 and saved['end']['step'] == 2
  assert 0 < saved['start']['heldout_l1'] < 1 and 0 < saved['end']['heldout_l1'] < 1
  assert 0 < saved['source_copy_heldout_l1'] < 1
  assert saved['ratio_to_source_copy'] == pytest.approx(
      saved['end']['heldout_l1'] / saved['source_copy_heldout_l1'])
  # A tie with copying the source is no win: at least 1 % below the baseline.
  assert saved['beats_source_copy'] == (saved['ratio_to_source_copy'] <= 0.99)
  assert set(saved['keypoint_pose_correlation']) == {'yaw_x', 'pitch_y'}
  # How the learnt motion compares with the synthetic heads' true motion (true_motion.py).
  assert {'gain', 'keypoint_gain', 'keypoint_spread_px'} <= set(saved['true_motion'])
  # How much of the prediction the decoder renders (the recipe blends it with the warped source).
  assert 0 <= saved['decoder']['decoder_share'] <= 1
  assert 0 < saved['decoder']['warped_source_heldout_l1'] < 1
  # The learning curve: step 0 and each checkpoint (steps 2), with the baseline; its plot.
  curve = json.loads((workdir / 'learning_curve.json').read_text())
  assert sorted(curve['heldout_l1']) == ['0', '2']
  assert curve['heldout_l1']['2'] == saved['end']['heldout_l1']
  assert curve['source_copy_heldout_l1'] == saved['source_copy_heldout_l1']
  for png in ('learning_curve.png', 'animation.png', 'reconstruction.png', 'motion.png'):
    with Image.open(workdir / png) as image:
      assert image.format == 'PNG' and image.size[0] > 100
  # reconstruction.png (2x enlarged): the driving row, the generated row and the source warped
  # by the true motion on the dense motion's 16x16 grid; its first column is driving frame 1.
  with Image.open(workdir / 'reconstruction.png') as image:
    sheet = np.asarray(image.convert('RGB'))[::2, ::2].astype(np.float32) / 255
  assert sheet.shape[0] == 3 * 64 + 2 * 4
  clip = saved['reconstruction_clip']
  assert 0 <= clip < saved['test_clips']
  clips = job._split_source(job.resolve_paths(config, workdir), 'test')  # pylint: disable=protected-access
  record = clips[clip]
  first = job._decode_frames(record, [0])  # pylint: disable=protected-access
  warped = true_motion.truly_warped(record, [1], first, 16)[0]
  np.testing.assert_allclose(sheet[136:200, 68:132], warped, atol=1 / 255 + 1e-6)
  assert np.abs(sheet[136:200, 68:132] - first[0]).mean() > 1e-3  # The head moved (0.003).
  assert saved == json.loads(json.dumps(result))
  # The animation: as many frames as the driving clip, three 64x64 panels side by side.
  with av.open(str(workdir / 'animation.mp4')) as container:
    frames = [f.to_ndarray(format='rgb24') for f in container.decode(video=0)]
  assert len(frames) == 3 == saved['video_frames']
  assert frames[0].shape == (64, 3 * 64, 3)
  # Its inputs, for the command-line animator (eval.json's animate_command).
  with Image.open(workdir / 'animation_source.png') as image:
    assert image.size == (64, 64)
  assert len(list(video.iter_frames(workdir / 'animation_driving.mp4'))) == 3


def test_the_logged_command_line_animates_the_job_s_animation_again(finished_job, tmp_path):
  import dataclasses  # pylint: disable=g-import-not-at-top
  import shlex  # pylint: disable=g-import-not-at-top
  from g3fa_jax.animate import __main__ as cli  # pylint: disable=g-import-not-at-top
  from g3fa_jax.animate import pipeline  # pylint: disable=g-import-not-at-top
  _, workdir, result = finished_job
  argv = shlex.split(result['animate_command'])
  assert argv[:3] == ['python', '-m', 'g3fa_jax.animate']
  options = cli.parse_args(argv[3:])
  assert options.best_frame == result['animation_reference_frame']
  assert pathlib.Path(options.out).parent == workdir
  # The job's Animator compiled for 8 frames a call: the same programs, a fresh output file.
  options = dataclasses.replace(options, out=str(tmp_path / 'again.mp4'), batch_size=8,
                                progress=False)
  done = pipeline.run(options, log=lambda _: None)
  assert done.initial_frame == result['animation_reference_frame']
  job_frames = np.stack(list(video.iter_frames(workdir / 'animation.mp4')))
  cli_frames = np.stack(list(video.iter_frames(options.out)))
  assert cli_frames.shape == job_frames.shape
  # source | driving | generated, the driving clip read back from its H.264 file: the same to
  # within H.264's rounding (mean 2-3 of 255 on the main job's 64x64 frames).
  diff = np.abs(cli_frames.astype(np.float32) - job_frames)
  assert diff.mean() < 6, diff.mean(axis=(0, 1, 3))


def test_prepared_inputs_are_reused(finished_job):
  config, workdir, _ = finished_job
  index = workdir / 'data' / 'index.json'
  unsup3d = workdir / 'unsup3d'
  before = (os.stat(index).st_mtime_ns, sorted(p.name for p in unsup3d.iterdir()))
  resolved = job.resolve_paths(config, workdir)
  job.prepare_data(resolved)
  job.prepare_inverse_renderer(resolved)
  assert (os.stat(index).st_mtime_ns, sorted(p.name for p in unsup3d.iterdir())) == before


def test_source_copy_baseline_is_the_mean_frame_difference(finished_job):
  config, workdir, _ = finished_job
  resolved = job.resolve_paths(config, workdir)
  record = job._split_source(resolved, 'test')[0]  # pylint: disable=protected-access
  n = record['num_frames']
  driving_idx = sorted(set(np.linspace(1, n - 1, 2).round().astype(int).tolist()))
  frames = job._decode_frames(record, [0] + driving_idx)  # pylint: disable=protected-access
  expected = np.abs(frames[1:] - frames[:1]).mean()
  assert job.source_copy_l1(resolved) == pytest.approx(float(expected), rel=1e-5)


def test_learning_curve_l1_is_the_heldout_l1(finished_job, tmp_path):
  # The curve takes the L1 and the true-motion figures from one generator pass per pair: its L1
  # must be heldout_l1's (the same pairs), whatever the order of the checkpoints.
  config, workdir, _ = finished_job
  resolved = job.resolve_paths(config, workdir)
  animator = job.untrained_animator(resolved)
  curve = job.LearningCurve(resolved, tmp_path)
  assert curve.evaluate(5, animator) == pytest.approx(job.heldout_l1(animator, resolved),
                                                       rel=1e-6)
  assert set(curve.true_motion[5]) >= {'gain', 'keypoint_gain'}
  # The decoder's share of the prediction and the warped source's L1, over the same pairs.
  shares, warped_l1, count = [], [], 0
  for _, _, source, driving in job.heldout_batches(resolved, 8):
    out = animator.reconstruct(source, driving)
    shares.append((1 - out['blend_mask']).mean() * len(driving))
    warped_l1.append(np.abs(out['deformed'] - driving).mean() * len(driving))
    count += len(driving)
  assert curve.decoder[5]['decoder_share'] == pytest.approx(sum(shares) / count, rel=1e-5)
  assert 0 < curve.decoder[5]['decoder_share'] < 1  # untrained: a mix of both
  assert curve.decoder[5]['warped_source_heldout_l1'] == pytest.approx(sum(warped_l1) / count,
                                                                       rel=1e-5)


def test_frames_and_truth_and_the_animations_mouth_come_from_the_records(finished_job):
  config, workdir, _ = finished_job
  resolved = job.resolve_paths(config, workdir)
  images, truth = job.frames_and_truth(resolved, 'train', ('yaw', 'mouth'), per_clip=2)
  clips = job._split_source(resolved, 'train')  # pylint: disable=protected-access
  assert images.shape == (2 * len(clips), 64, 64, 3) and truth.shape == (2 * len(clips), 2)
  record = clips[0]
  last = record['num_frames'] - 1
  np.testing.assert_array_equal(images[:2], job._decode_frames(record, [0, last]))  # pylint: disable=protected-access
  np.testing.assert_allclose(truth[1], [record['synthetic']['yaw'][last],
                                        record['synthetic']['mouth'][last]], rtol=1e-6)
  inputs = job.animation_inputs(resolved)
  assert inputs.driving_mouth.shape == (len(inputs.driving),)
  assert np.all((inputs.driving_mouth >= 0) & (inputs.driving_mouth <= 1))


def test_animation_turn_benchmark_reads_the_turn_and_the_mouth(finished_job, tmp_path):
  # benchmarks/animation_turn.py on the tiny job, with readers trained for a few steps: the
  # figures' plumbing (a reader this short measures nothing; reuse of the written reader:
  # tests/test_metrics_geometry.py::test_cached_reader_writes_once_and_reads_back).
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import flax  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import pose  # pylint: disable=g-import-not-at-top
  config, workdir, _ = finished_job
  resolved = job.resolve_paths(config, workdir)
  images, angles = job.frames_and_truth(resolved, 'train', ('yaw', 'pitch', 'roll'))
  pose_reader = tmp_path / 'pose.msgpack'
  pose_reader.write_bytes(flax.serialization.msgpack_serialize(
      pose.train_pose_regressor(images, angles, steps=2)))
  mouth_reader = tmp_path / 'mouth.msgpack'
  overrides = ['--job_config.synthetic.videos=4', '--job_config.synthetic.frames=4',
               '--job_config.demo.eval_clips=1', '--job_config.demo.eval_frames=2',
               '--job_config.demo.video_frames=3']
  command = [sys.executable, str(ROOT / 'benchmarks' / 'animation_turn.py'),
             f'--workdir={workdir}', f'--pose_reader={pose_reader}',
             f'--mouth_reader={mouth_reader}', '--mouth_steps=2', '--fit_steps=3',
             f'--json_out={tmp_path / "turn.json"}', *overrides]
  run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  assert 'opening gain' in run.stdout and mouth_reader.is_file()
  figures = json.loads((tmp_path / 'turn.json').read_text())
  assert figures['frames'] == 3 and set(figures['angles']) == {'yaw', 'pitch', 'roll'}
  assert figures['reconstruction']['pairs'] == 2
  assert set(figures['reconstruction']['angles']) == {'yaw', 'pitch', 'roll'}
  assert set(figures['reconstruction']['angles']['yaw']) >= {'turn_gain', 'turn_gain_of_driving',
                                                             'turn_gain_of_true_warp',
                                                             'turn_gain_of_mouth_warp',
                                                             'turn_gain_of_fitted_warp'}
  assert 'held-out reconstructions' in run.stdout
  assert figures['mouth']['reconstruction']['pairs'] == 2
  assert {'opening_gain_of_true_warp', 'opening_gain_of_mouth_warp',
          'opening_gain_of_fitted_warp'} <= set(
      figures['mouth']['reconstruction'])
  assert set(figures['mouth']['animation']) >= {'opening_gain', 'opening_gain_of_driving',
                                                'reader_error_on_driving'}


def test_warp_correction_benchmark_starts_at_the_warp_and_learns_a_correction(finished_job,
                                                                               tmp_path):
  # benchmarks/warp_correction.py on the tiny job: its held-out pairs are the job's, its zero-
  # initialised correction scores exactly the warped source at step 0, and training moves it.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  config, workdir, _ = finished_job
  overrides = ['--job_config.synthetic.videos=4', '--job_config.synthetic.frames=4',
               '--job_config.demo.eval_clips=1', '--job_config.demo.eval_frames=2']
  command = [sys.executable, str(ROOT / 'benchmarks' / 'warp_correction.py'),
             f'--workdir={workdir}', '--steps=2', '--every=1', '--batch_size=2',
             '--train_clips=2', '--train_frames=2',
             f'--json_out={tmp_path / "correction.json"}', *overrides]
  run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  figures = json.loads((tmp_path / 'correction.json').read_text())
  resolved = job.resolve_paths(config, workdir)
  heldout = list(job.heldout_batches(resolved, 8))
  assert figures['heldout_pairs'] == sum(len(d) for _, _, _, d in heldout) == 2
  copy = np.mean([np.abs(s - d).mean() for _, _, s, d in heldout])
  assert figures['source_copy_l1'] == pytest.approx(copy, rel=1e-5)
  num_kp = config.model.common_params.num_kp
  assert f'({6 + 1 + 2 * num_kp} channels)' in run.stdout
  # Two frames of each of the first two training clips, from its first frame.
  plans = synthetic_dataset.plan(job.settings_from_config(config))
  assert sum(p.split == 'train' for p in plans) > 2
  assert figures['training_pairs'] == 2 * 2
  start, *later = figures['history']
  assert [h['step'] for h in figures['history']] == [0, 1, 2]
  assert start['mean_abs_correction'] == 0
  assert start['l1'] == pytest.approx(figures['warped_source_l1'], rel=1e-5)
  assert later[-1]['mean_abs_correction'] > 0
  assert 'the corrected warp:' in run.stdout


def test_depth_loss_ignores_border_columns():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  config = _load_config()
  raw = jnp.zeros((1, 8, 8))  # Canonical depth 1.0 everywhere but the border columns.
  target = np.ones((1, 8, 8), np.float32)
  target[:, :, :2] = target[:, :, -2:] = 5.  # Would count if the border were compared.
  assert float(job.depth_loss(raw, jnp.asarray(target), config.unsup3d)) == pytest.approx(0.)
  target[:, :, 3] = 2.  # Clipped to 1.095.
  expected = 0.095 / 4
  assert float(job.depth_loss(raw, jnp.asarray(target), config.unsup3d)) == pytest.approx(
      expected, rel=1e-4)


def test_animation_is_driven_by_the_clip_that_turns_most():
  identities = ['a', 'b', 'c', 'b']
  yaws = [np.array([30., 32.]), np.array([-5., 50.]), np.array([4., -3.]), np.array([1., 2.])]
  # Driving: b's clip turning 55 degrees; source: the most frontal first frame of another person
  # (c's 4 degrees; b's other clip is excluded although it starts at 1 degree).
  assert job.animation_pair(identities, yaws) == (2, 1)
  # One person only: another clip of theirs.
  assert job.animation_pair(['a', 'a'], [np.array([0., 1.]), np.array([0., 40.])]) == (0, 1)
  # No ground truth: the first clip driven by the first clip of another person.
  assert job.animation_pair(['a', 'a', 'b'], [None, None, None]) == (0, 2)


def test_reconstruction_shows_the_clip_that_turns_most_from_a_frontal_start():
  yaws = [np.array([2., 5.]), np.array([-53., 34.]), np.array([-4., 57., 20.]), None]
  # Clip 1 turns furthest (87 degrees) but from a profile view; clip 2 turns 61 from frontal.
  assert job.reconstruction_clip(yaws) == 2
  # No clip starts frontal: the furthest turn of all.
  assert job.reconstruction_clip([np.array([40., 45.]), np.array([-50., 0.])]) == 1
  assert job.reconstruction_clip([None, None]) == 0


def test_animation_motion_is_relative_to_the_driving_frame_in_the_source_pose():
  driving = np.array([[-40., 0., 0.], [-10., 5., 0.], [2., -1., 1.], [30., 0., 0.]])
  assert job.reference_frame(np.array([0., 0., 0.]), driving) == 2
  assert job.reference_frame(np.array([-35., 4., 0.]), driving) == 0
  # Pitch and roll count too: yaw alone would pick frame 1.
  assert job.reference_frame(np.array([-8., -20., 0.]), driving) == 2
  assert job.reference_frame(None, driving) == 0
  assert job.reference_frame(np.zeros(3), None) == 0
  record = {'synthetic': {'yaw': [1., 2.], 'pitch': [3., 4.], 'roll': [5., 6.]}}
  assert job.clip_poses(record).tolist() == [[1., 3., 5.], [2., 4., 6.]]
  assert job.clip_poses({}) is None
