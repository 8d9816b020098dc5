"""Relative motion (FOMM's normalize_kp), convex hull areas and best-frame selection."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax.animate import best_frame
from g3fa_jax.inference import motion


def _keypoints(rng, batch, num_kp=15):
  value = rng.uniform(-0.8, 0.8, (batch, num_kp, 2)).astype(np.float32)
  jacobian = (np.eye(2) + 0.3 * rng.standard_normal((batch, num_kp, 2, 2))).astype(np.float32)
  return {'value': value, 'jacobian': jacobian}


def _shoelace_of_sorted_hull(points):
  """Reference hull area: gift wrapping in float64, independent of the code under test."""
  pts = np.unique(np.asarray(points, np.float64), axis=0)
  start = pts[np.lexsort((pts[:, 1], pts[:, 0]))[0]]
  hull, current = [], start
  while True:
    hull.append(current)
    candidate = pts[0] if not np.array_equal(pts[0], current) else pts[1]
    for p in pts:
      cross = ((candidate[0] - current[0]) * (p[1] - current[1])
               - (candidate[1] - current[1]) * (p[0] - current[0]))
      if cross < 0 or (cross == 0 and np.sum((p - current) ** 2) >
                       np.sum((candidate - current) ** 2)):
        candidate = p
    current = candidate
    if np.array_equal(current, start):
      break
  hull = np.asarray(hull)
  x, y = hull[:, 0], hull[:, 1]
  return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@pytest.mark.parametrize('seed', range(5))
def test_convex_hull_area_matches_references(seed):
  points = np.random.default_rng(seed).uniform(-1, 1, (15, 2))
  area = motion.convex_hull_area(points)
  np.testing.assert_allclose(area, _shoelace_of_sorted_hull(points), rtol=1e-12)
  spatial = pytest.importorskip('scipy.spatial')
  np.testing.assert_allclose(area, spatial.ConvexHull(points).volume, rtol=1e-12)


def test_convex_hull_area_known_shapes_and_degenerate():
  square = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [0.5, 1.5]])
  assert motion.convex_hull_area(square) == pytest.approx(4.0)
  assert motion.convex_hull_area(np.array([[0, 0], [1, 1], [2, 2], [3, 3]])) == 0.0
  assert motion.convex_hull_area(np.array([[0, 0], [1, 0]])) == 0.0
  # Collinear driving keypoints: no scale adaptation rather than a division by zero.
  scale = motion.movement_scale(square[None], np.linspace(0, 1, 12).reshape(1, 6, 2))
  np.testing.assert_array_equal(scale, [1.0])


def _fomm_reference(kp_source, kp_driving, kp_initial, adapt, relative, relative_jacobian):
  """FOMM's normalize_kp written directly in numpy (scale from batch element 0)."""
  if not relative:
    return kp_driving
  scale = 1.0
  if adapt:
    spatial = pytest.importorskip('scipy.spatial')
    source_area = spatial.ConvexHull(kp_source['value'][0]).volume
    driving_area = spatial.ConvexHull(kp_initial['value'][0]).volume
    scale = np.sqrt(source_area) / np.sqrt(driving_area)
  out = dict(kp_driving)
  out['value'] = (kp_driving['value'] - kp_initial['value']) * scale + kp_source['value']
  if relative_jacobian:
    diff = np.matmul(kp_driving['jacobian'], np.linalg.inv(kp_initial['jacobian']))
    out['jacobian'] = np.matmul(diff, kp_source['jacobian'])
  return out


@pytest.mark.parametrize('adapt,relative,relative_jacobian', [
    (True, True, True), (False, True, True), (True, True, False), (True, False, False)])
def test_normalize_kp_matches_fomm_formula(adapt, relative, relative_jacobian):
  rng = np.random.default_rng(1)
  kp_source, kp_initial, kp_driving = _keypoints(rng, 1), _keypoints(rng, 1), _keypoints(rng, 6)
  expected = _fomm_reference(kp_source, kp_driving, kp_initial, adapt, relative,
                             relative_jacobian)
  got = motion.normalize_kp(kp_source, kp_driving, kp_initial, adapt_movement_scale=adapt,
                            use_relative_movement=relative,
                            use_relative_jacobian=relative_jacobian)
  for key in ('value', 'jacobian'):
    np.testing.assert_allclose(np.asarray(got[key]), expected[key], rtol=1e-5, atol=1e-5)


def test_relative_keypoints_per_example_scale_and_identity_at_initial_frame():
  rng = np.random.default_rng(2)
  kp_source, kp_initial = _keypoints(rng, 1), _keypoints(rng, 1)
  scale = motion.movement_scale(kp_source['value'], kp_initial['value'])
  expected = np.sqrt(motion.convex_hull_area(kp_source['value'][0])
                     / motion.convex_hull_area(kp_initial['value'][0]))
  np.testing.assert_allclose(scale, [expected], rtol=1e-6)
  # The reference frame itself maps exactly onto the source keypoints.
  out = motion.relative_keypoints(kp_source, kp_initial, kp_initial, scale)
  np.testing.assert_allclose(np.asarray(out['value']), kp_source['value'], atol=1e-6)
  np.testing.assert_allclose(np.asarray(out['jacobian']), kp_source['jacobian'], atol=1e-5)


def test_inverse_2x2():
  m = _keypoints(np.random.default_rng(3), 4)['jacobian']
  np.testing.assert_allclose(np.asarray(motion.inverse_2x2(m)), np.linalg.inv(m), rtol=1e-4,
                             atol=1e-5)


def test_best_frame_is_invariant_to_position_and_size():
  rng = np.random.default_rng(4)
  source = rng.uniform(0, 100, (5, 2))
  others = [rng.uniform(0, 100, (5, 2)) for _ in range(4)]
  moved = 3.0 * source + np.array([40.0, -7.0])  # The same pose, shifted and scaled.
  driving = others[:2] + [moved, None] + others[2:]
  assert best_frame.best_frame(source, driving) == 2
  assert best_frame.pose_distance(source, moved) == pytest.approx(0.0, abs=1e-12)
  assert best_frame.best_frame(source, [None, None]) == 0
