"""The linear probe of the synthetic benchmarks: a target that is a linear function of the
features is read exactly, a target unrelated to them is not, and the per-clip changes."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax.metrics import linear_probe


def test_changes_since_first_is_relative_to_each_clip():
  values = np.array([[1., 5.], [2., 5.], [4., 5.], [10., 0.], [10., 1.], [13., 3.]])
  np.testing.assert_array_equal(
      linear_probe.changes_since_first(values, 3),
      [[0., 0.], [1., 0.], [3., 0.], [0., 0.], [0., 1.], [3., 3.]])
  with pytest.raises(ValueError, match='multiple of clip_length'):
    linear_probe.changes_since_first(values[:5], 3)


def test_ridge_probe_reads_a_linear_target_and_not_noise():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(600, 12))
  weights = rng.normal(size=(12,))
  linear = features @ weights + 0.01 * rng.normal(size=600)
  noise = rng.normal(size=600)
  targets = np.stack([linear, noise], 1)
  r2 = linear_probe.ridge_probe_r2(features[:400], targets[:400], features[400:], targets[400:])
  assert r2.shape == (2,)
  assert r2[0] > 0.99
  assert r2[1] < 0.05
  # Shifting and scaling a feature changes nothing: the features are standardised.
  scaled = features * np.linspace(1, 100, 12) + 7.
  np.testing.assert_allclose(
      linear_probe.ridge_probe_r2(scaled[:400], targets[:400], scaled[400:], targets[400:]), r2,
      atol=1e-6)


def test_r_squared_exact_mean_and_worse():
  target = np.array([1., 2., 3., 4.])
  assert linear_probe.r_squared(target, target) == 1.
  assert linear_probe.r_squared(np.full(4, 2.5), target) == 0.
  assert linear_probe.r_squared(target[::-1], target) < 0.
  np.testing.assert_allclose(
      linear_probe.r_squared(np.stack([target, np.full(4, 2.5)], 1), np.stack([target] * 2, 1)),
      [1., 0.])


def test_ridge_probe_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match='do not match'):
    linear_probe.ridge_probe_r2(np.zeros((10, 3)), np.zeros((9, 1)), np.zeros((4, 3)),
                                np.zeros((4, 1)))
