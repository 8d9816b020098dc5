"""The learnt motion scored against the synthetic heads' true motion
(g3fa_jax/demo/true_motion.py)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from g3fa_jax import model_config
from g3fa_jax.demo import job
from g3fa_jax.demo import true_motion
from g3fa_jax.models.generator import deform_input
from g3fa_jax.synthetic import dataset
from g3fa_jax.synthetic import flow

GRID = 8


@pytest.fixture(scope='module')
def config(tmp_path_factory):
  config = model_config.load_config(
      str(pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'synthetic.py'))
  config.synthetic.update(videos=6, frames=6, workers=0)
  config.image_size = 32
  config = job.resolve_paths(config, tmp_path_factory.mktemp('true_motion'))
  job.prepare_data(config)
  return config


def _true_grids(config) -> list[np.ndarray]:
  """The true sampling grids of the held-out batches, in their order, from the flow module."""
  grids = []
  for record, driving_idx, _, _ in job.heldout_batches(config, 8):
    poses = flow.clip_poses(record)
    depth = dataset.read_geometry(record, driving_idx)[0][..., 0]
    grids.append(np.stack([flow.backward_grid(d, poses, j, 0, GRID)[0]
                           for d, j in zip(depth, driving_idx)]))
  return grids


def _motion(grids: list[np.ndarray], fraction: float, keypoints: np.ndarray):
  """A stand-in motion: `fraction` of the true motion, and source keypoints moved by `fraction`
  of the true motion at the driving keypoints."""
  identity = flow.grid_coordinates(GRID)
  queue = list(grids)

  def motion(source, driving):
    truth = queue.pop(0)
    assert truth.shape[0] == source.shape[0] == driving.shape[0]
    kp_driving = np.broadcast_to(keypoints, (len(truth),) + keypoints.shape)
    true_at = np.stack([true_motion.sample_field(t - identity, k)
                        for t, k in zip(truth, kp_driving)])
    return identity + fraction * (truth - identity), kp_driving + fraction * true_at, kp_driving
  return motion


def test_true_motion_scores_one_and_no_motion_scores_the_baseline(config):
  score = true_motion.heldout_score(config, GRID)
  grids = _true_grids(config)
  keypoints = np.array([[0., -0.2], [0.1, 0.1], [-0.15, 0.], [0.9, 0.9]], np.float32)
  right = score(_motion(grids, 1., keypoints))
  assert right['gain'] == pytest.approx(1.0, abs=1e-5)
  assert right['endpoint_px'] == pytest.approx(0., abs=1e-4)
  assert right['keypoint_gain'] == pytest.approx(1.0, abs=1e-5)
  assert right['identity_endpoint_px'] > 0.3  # the heads do move
  still = score(_motion(grids, 0., keypoints))
  assert still['gain'] == pytest.approx(0.)
  assert still['endpoint_px'] == pytest.approx(still['identity_endpoint_px'])
  assert still['keypoint_gain'] == pytest.approx(0.)
  backwards = score(_motion(grids, -1., keypoints))
  assert backwards['gain'] == pytest.approx(-1.0, abs=1e-5)
  assert backwards['endpoint_px'] == pytest.approx(2 * still['endpoint_px'], rel=1e-4)
  # The spread: root mean squared distance of the keypoints from their mean, in pixels.
  expected = np.sqrt(np.sum(np.var(keypoints, axis=0))) * (32 - 1) / 2
  assert right['keypoint_spread_px'] == pytest.approx(expected, rel=1e-5)


def test_the_true_warp_is_the_source_at_frame_zero_and_the_true_grids_elsewhere(config):
  record, driving_idx, source, _ = next(job.heldout_batches(config, 8))
  # The source's own frame: the true motion is zero, and align_corners warps are exact there.
  still = true_motion.truly_warped(record, [0] * len(source), source, GRID)
  np.testing.assert_allclose(still, source, atol=1e-5)
  warped = true_motion.truly_warped(record, driving_idx, source, GRID)
  assert warped.shape == source.shape and warped.dtype == np.float32
  # The other frames: warped by the grids `_true_grids` gives. (Whether that beats copying the
  # source depends on the clip: these 32x32 ones turn little, and a warp cannot reshade.)
  grids = _true_grids(config)[0]
  np.testing.assert_allclose(warped, np.asarray(deform_input(source, grids, True)), atol=1e-6)
  assert np.abs(warped - source).max() > 0.1  # the heads do move
  # With the mouth's opening: the same at the source's own frame, elsewhere a different warp
  # only where the mouth opens or closes (the chin and lips: a small part of the frame).
  still = true_motion.truly_warped(record, [0] * len(source), source, GRID, with_mouth=True)
  np.testing.assert_allclose(still, source, atol=1e-5)
  with_mouth = true_motion.truly_warped(record, driving_idx, source, GRID, with_mouth=True)
  changed = np.abs(with_mouth - warped).max(-1) > 1e-3
  mouth = np.asarray(record['synthetic']['mouth'])
  assert np.abs(mouth[driving_idx] - mouth[0]).max() > 0.05  # this clip's mouth moves
  assert 0 < changed.mean() < 0.15


def _brightest_pixel(frames: np.ndarray) -> np.ndarray:
  """A detector that follows the image: one keypoint on each frame's brightest pixel."""
  size = frames.shape[2]
  flat = frames[..., 0].reshape(len(frames), -1).argmax(axis=1)
  xy = np.stack([flat % size, flat // size], axis=-1).astype(np.float64)
  return (xy * 2 / (size - 1) - 1)[:, None, :]


def test_shift_gain_is_one_for_keypoints_that_follow_the_image_and_zero_for_fixed_ones():
  frames = np.zeros((3, 16, 16, 3), np.float32)
  for i, (y, x) in enumerate(((4, 5), (8, 3), (10, 9))):
    frames[i, y, x] = 1.
  assert true_motion.shift_gain(_brightest_pixel, frames) == pytest.approx(1.)
  assert true_motion.shift_gain(_brightest_pixel, frames, shift_px=3) == pytest.approx(1.)
  fixed = lambda f: np.zeros((len(f), 4, 2))
  assert true_motion.shift_gain(fixed, frames) == pytest.approx(0.)
  # Keypoints moving half as far as the image: 0.5.
  half = lambda f: 0.5 * _brightest_pixel(f)
  assert true_motion.shift_gain(half, frames) == pytest.approx(0.5)


def test_shift_frames_moves_the_content_and_repeats_the_edge():
  frames = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
  moved = true_motion.shift_frames(frames, 1, 2)
  np.testing.assert_array_equal(moved[0, 2:, 1:, 0], frames[0, :2, :3, 0])
  np.testing.assert_array_equal(moved[0, :2, 0, 0], frames[0, 0, 0, 0])


def test_bilinear_sampling_matches_the_grid_at_its_nodes():
  field = np.random.default_rng(0).random((5, 5, 2))
  nodes = flow.grid_coordinates(5)[[0, 2, 4], [1, 3, 4]]
  bilinear = true_motion.sample_field
  np.testing.assert_allclose(bilinear(field, nodes), field[[0, 2, 4], [1, 3, 4]], atol=1e-6)
  middle = bilinear(field, np.array([[-0.75, -1.]]))
  np.testing.assert_allclose(middle[0], (field[0, 0] + field[0, 1]) / 2, atol=1e-6)


def test_truth_pairs_open_the_mouth_when_the_config_says_so(config):
  # demo.truth_motion_mouth reaches the warm-up's pairs: the same pairs (the same seed), the
  # same truth wherever the mouth's opening does not move anything, a different one where it does.
  from g3fa_jax.demo import truth_pairs  # pylint: disable=g-import-not-at-top
  config = config.copy_and_resolve_references()
  batches = {}
  for with_mouth in (False, True):
    config.demo.truth_motion_mouth = with_mouth
    next_batch = truth_pairs.sampler(config, GRID)
    batches[with_mouth] = [next_batch() for _ in range(4)]
  changed = 0.
  for rigid, opening in zip(batches[False], batches[True]):
    np.testing.assert_array_equal(rigid[0], opening[0])  # the same source frames
    np.testing.assert_array_equal(rigid[1], opening[1])
    moved = np.abs(rigid[2] - opening[2]).max(-1) > 1e-6
    changed += moved.mean()
    assert moved.mean() < 0.2  # the mouth and chin only
  assert changed > 0  # some pair of 16 has the mouth open differently
