"""Geometry and pose metrics of the geometry benchmark (benchmarks/bench_geometry.py), on known
inputs."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from g3fa_jax.metrics import geometry
from g3fa_jax.metrics import mouth
from g3fa_jax.metrics import pose

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_masked_depth_l1():
  rng = np.random.default_rng(0)
  depth = rng.uniform(0.9, 1.1, (2, 8, 8, 1))
  mask = np.zeros((2, 8, 8), bool)
  mask[:, 2:6, 2:6] = True
  assert geometry.masked_depth_l1(depth, depth, mask) == 0.
  shifted = depth + 0.01
  shifted[~mask] += 5.  # Outside the mask: ignored.
  assert geometry.masked_depth_l1(shifted, depth, mask) == pytest.approx(0.01)
  # The target is clipped to what the inverse renderer can output.
  far = np.full_like(depth, 3.)
  assert geometry.masked_depth_l1(np.full_like(depth, 1.095), far, mask,
                                  target_range=(0.905, 1.095)) == pytest.approx(0.)
  with pytest.raises(ValueError, match='no pixel'):
    geometry.masked_depth_l1(depth, depth, np.zeros((2, 8, 8), bool))
  with pytest.raises(ValueError, match=r'\(B, H, W, 1\)'):
    geometry.masked_depth_l1(depth[..., 0], depth[..., 0], mask)


def test_normal_angle_degrees():
  mask = np.ones((1, 2, 2), bool)
  z = np.zeros((1, 2, 2, 3))
  z[..., 2] = 1.
  x = np.zeros((1, 2, 2, 3))
  x[..., 0] = 1.
  assert geometry.normal_angle_degrees(z, z, mask) == pytest.approx(0., abs=1e-6)
  assert geometry.normal_angle_degrees(3. * z, z, mask) == pytest.approx(0., abs=1e-6)
  assert geometry.normal_angle_degrees(x, z, mask) == pytest.approx(90.)
  assert geometry.normal_angle_degrees(-z, z, mask) == pytest.approx(180.)
  half = mask.copy()
  half[0, 0] = False
  mixed = z.copy()
  mixed[0, 0] = x[0, 0]  # 90 degrees off, but masked out.
  assert geometry.normal_angle_degrees(mixed, z, half) == pytest.approx(0., abs=1e-6)


def test_pose_errors_degrees():
  truth = np.array([[10., -5., 2.], [-20., 3., 0.]])
  assert pose.pose_errors_degrees(truth, truth) == {'yaw': 0., 'pitch': 0., 'roll': 0.}
  got = pose.pose_errors_degrees(truth + np.array([4., -2., 1.]), truth)
  assert got == pytest.approx({'yaw': 4., 'pitch': 2., 'roll': 1.})
  with pytest.raises(ValueError):
    pose.pose_errors_degrees(truth[:, :2], truth[:, :2])


def test_pose_regressor_learns_a_pose_from_the_image():
  # A bright bar whose horizontal position is the yaw and vertical position the pitch.
  rng = np.random.default_rng(0)
  angles = np.stack([rng.uniform(-40, 40, 96), rng.uniform(-20, 20, 96), np.zeros(96)], 1)
  images = np.zeros((96, 16, 16, 3), np.float32)
  for img, (yaw, pitch, _) in zip(images, angles):
    cx, cy = int(round(7.5 + yaw / 40 * 6)), int(round(7.5 - pitch / 20 * 6))
    img[max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2] = 1.
  train, test = slice(0, 80), slice(80, 96)
  variables = pose.train_pose_regressor(images[train], angles[train], steps=300, width=8,
                                        learning_rate=3e-3)
  predicted = pose.predict_pose(variables, images[test], width=8)
  errors = pose.pose_errors_degrees(predicted, angles[test])
  mean_guess = pose.pose_errors_degrees(np.broadcast_to(angles[train].mean(0), (16, 3)),
                                        angles[test])
  assert errors['yaw'] < 0.5 * mean_guess['yaw']
  assert errors['pitch'] < 0.5 * mean_guess['pitch']


def _bench_geometry():
  spec = importlib.util.spec_from_file_location('bench_geometry',
                                                ROOT / 'benchmarks' / 'bench_geometry.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_benchmark_scores_ground_truth_as_zero_and_a_copied_source_as_the_baseline(tmp_path):
  bench = _bench_geometry()
  rng = np.random.default_rng(0)
  n = 4
  depth = np.full((n, 16, 16, 1), 1.0, np.float32)
  depth[:, :, :4] = 10.  # Background (outside the face mask).
  normal = np.zeros((n, 16, 16, 3), np.float32)
  normal[..., 2] = -1.
  held = {'source': rng.uniform(0, 1, (n, 16, 16, 3)).astype(np.float32),
          'driving': rng.uniform(0, 1, (n, 16, 16, 3)).astype(np.float32),
          'depth': depth, 'normal': normal,
          'angles': rng.uniform(-30, 30, (n, 3)).astype(np.float32)}
  # An oracle inverse renderer and pose reader: exact on the driving frames.
  exact_geometry = lambda images: (held['depth'], held['normal'])
  exact_pose = lambda images: held['angles']
  truth = bench.score(held['driving'], held, exact_geometry, exact_pose)
  assert truth['l1'] == 0. and truth['ssim'] == pytest.approx(1., abs=1e-5)
  assert truth['depth_l1'] == 0. and truth['normal_degrees'] == pytest.approx(0., abs=1e-6)
  assert truth['yaw_degrees'] == truth['pitch_degrees'] == truth['roll_degrees'] == 0.
  copied = bench.score(held['source'], held, exact_geometry, exact_pose)
  assert copied['l1'] == pytest.approx(float(np.abs(held['source'] - held['driving']).mean()))
  assert copied['psnr'] < truth['psnr']
  assert '| no motion |' in bench.markdown_table({'no motion': copied})
  # The table and the figures, written after each mode.
  bench.write_table(str(tmp_path), {'no motion': copied}, {'steps': 100})
  saved = json.loads((tmp_path / 'geometry.json').read_text())
  assert saved['steps'] == 100 and saved['rows']['no motion'] == pytest.approx(copied)
  assert (tmp_path / 'geometry.md').read_text().strip() == bench.markdown_table(
      {'no motion': copied})
  # The modes' curves side by side, from their learning_curve.json (a mode without one is left out).
  (tmp_path / 'none').mkdir()
  (tmp_path / 'none' / 'learning_curve.json').write_text(json.dumps({
      'source_copy_heldout_l1': 0.04, 'heldout_l1': {'0': 0.05, '100': 0.03},
      'true_motion': {'100': {'gain': 0.25, 'keypoint_gain': 0.5}}}))
  bench.write_curves(str(tmp_path), ['none', 'detached'])
  curves = (tmp_path / 'curves.md').read_text()
  assert '| step | none |' in curves and 'detached' not in curves
  assert '| 0 | 0.0500 (1.25×) |' in curves and '| 100 | 0.0300 (0.75×); 0.25 / 0.50 |' in curves
  config = bench.mode_config(__import__('g3fa_jax.model_config', fromlist=['x']).load_config(
      str(ROOT / 'configs' / 'synthetic.py')), 'none', 100)
  assert config.ensemble.w_depth == config.ensemble.w_normal == 0.
  assert config.train.num_train_steps == 100


def test_turn_gains_relative_to_the_reference_frame():
  rng = np.random.default_rng(0)
  truth = np.stack([np.linspace(-40., 40., 9), np.linspace(5., -5., 9), np.zeros(9)], axis=-1)
  offset = np.array([3., -2., 7.])  # A reader's constant error on this face cancels.
  full = pose.turn_gains(truth + offset, truth, reference=4)
  assert full['yaw'] == pytest.approx(1.) and full['pitch'] == pytest.approx(1.)
  assert np.isnan(full['roll'])  # The target never rolls.
  # A face that turns a third as far about the reference frame, with reading noise.
  third = truth[4] + (truth - truth[4]) / 3 + rng.normal(0., 0.1, truth.shape)
  assert pose.turn_gains(third, truth, 4)['yaw'] == pytest.approx(1 / 3, abs=0.01)
  still = pose.turn_gains(np.repeat(truth[4:5], 9, axis=0), truth, 4)
  assert still['yaw'] == 0. and still['pitch'] == 0.
  assert pose.turn_gains(-truth, truth, 4)['yaw'] == pytest.approx(-1.)
  with pytest.raises(ValueError, match='reference frame 9'):
    pose.turn_gains(truth, truth, 9)
  with pytest.raises(ValueError, match='must both be'):
    pose.turn_gains(truth[:, :2], truth[:, :2], 0)


def test_pooled_change_gains_over_pairs_with_their_own_sources():
  rng = np.random.default_rng(0)
  wanted = rng.normal(0., 20., (12, 3))  # Each pair's true change from its own source frame.
  assert pose.pooled_change_gains(wanted, wanted) == pytest.approx([1., 1., 1.])
  assert pose.pooled_change_gains(np.zeros_like(wanted), wanted) == pytest.approx([0., 0., 0.])
  # A generated face that turns a third of the way, with a reader's per-pair noise that is
  # uncorrelated with the change: the pooled gain still reads a third.
  noise = rng.normal(0., 1., wanted.shape)
  noise -= wanted * (np.sum(noise * wanted, 0) / np.sum(wanted ** 2, 0))
  assert pose.pooled_change_gains(wanted / 3 + noise, wanted) == pytest.approx([1 / 3] * 3)
  still = np.zeros((4, 1))
  assert np.isnan(pose.pooled_change_gains(still, still)[0])
  with pytest.raises(ValueError, match='pooled_change_gains'):
    pose.pooled_change_gains(wanted, wanted[:, :2])


def test_mouth_reader_reads_an_opening_and_the_opening_gain_scores_it():
  # A dark slot whose height is the opening, on a bright face-coloured square.
  rng = np.random.default_rng(0)
  openings = rng.uniform(0, 1, 96).astype(np.float32)
  images = np.full((96, 16, 16, 3), 0.8, np.float32)
  for img, opening in zip(images, openings):
    half = opening * 4
    rows = np.arange(16) + 0.5
    img[:, 5:11] *= (1 - np.clip(half - np.abs(rows - 8), 0, 1))[:, None, None]
  train, test = slice(0, 80), slice(80, 96)
  variables = mouth.train_mouth_reader(images[train], openings[train], steps=300, width=8,
                                       learning_rate=3e-3)
  read = mouth.read_mouth(variables, images[test], width=8)
  assert read.shape == (16,)
  mean_guess = np.abs(openings[train].mean() - openings[test]).mean()
  assert np.abs(read - openings[test]).mean() < 0.5 * mean_guess
  truth = openings[test]
  assert mouth.opening_gain(truth + 0.3, truth, 2) == pytest.approx(1.)
  assert mouth.opening_gain(truth[2] + 0.5 * (truth - truth[2]), truth, 2) == pytest.approx(0.5)
  assert mouth.opening_gain(np.full(16, 0.4), truth, 2) == 0.
  assert np.isnan(mouth.opening_gain(truth, np.full(16, 0.4), 2))
  with pytest.raises(ValueError):
    mouth.opening_gain(truth[:, None], truth[:, None], 0)
  with pytest.raises(ValueError):
    mouth.train_mouth_reader(images[:4], openings[:4, None])


def test_cached_reader_writes_once_and_reads_back(tmp_path):
  calls = []

  def make():
    calls.append(1)
    return {'params': {'w': np.arange(3, dtype=np.float32)}}
  path = tmp_path / 'reader.msgpack'
  first = pose.cached_reader(path, make)
  second = pose.cached_reader(path, make)
  assert len(calls) == 1 and not (tmp_path / 'reader.msgpack.tmp').exists()
  np.testing.assert_array_equal(second['params']['w'], first['params']['w'])
