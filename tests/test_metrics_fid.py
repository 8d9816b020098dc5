"""Frechet distance and streamed statistics against an independent float64 numpy/scipy computation
(eigendecomposition instead of `scipy.linalg.sqrtm`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from g3fa_jax.metrics import fid


def _reference_fid(x: np.ndarray, y: np.ndarray) -> float:
  """FID from the features, with Tr(sqrt(S1 S2)) = Tr(sqrt(S1^1/2 S2 S1^1/2)) via eigh."""
  mu1, mu2 = x.mean(0), y.mean(0)
  s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  w, v = linalg.eigh(s1)
  root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  inner = linalg.eigvalsh(root1 @ s2 @ root1)
  return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2)
               - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def _features(seed, n=300, d=16, shift=0.0):
  rng = np.random.default_rng(seed)
  mix = rng.normal(size=(d, d)) / np.sqrt(d)
  return (rng.normal(size=(n, d)) @ mix + shift).astype(np.float32)


def test_streamed_statistics_match_numpy():
  x = _features(0)
  stats = fid.FeatureStatistics()
  for chunk in np.array_split(x, 7):
    stats.update(chunk)
  mu, sigma = stats.mean_and_covariance()
  np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), atol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), atol=1e-10)


@pytest.mark.parametrize('shift', [0.0, 0.5])
def test_fid_matches_reference(shift):
  x, y = _features(0), _features(1, shift=shift)
  a, b = fid.FeatureStatistics(), fid.FeatureStatistics()
  a.update(x)
  b.update(y)
  expected = _reference_fid(x.astype(np.float64), y.astype(np.float64))
  assert fid.fid_from_statistics(a, b) == pytest.approx(expected, rel=1e-8, abs=1e-8)
  assert fid.fid_from_statistics(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_known_gaussians():
  # N(0, I) vs N(m, 4I) in d dims: |m|^2 + d + 4d - 2 * 2d = |m|^2 + d.
  d, m = 5, np.full(5, 0.3)
  assert fid.frechet_distance(np.zeros(d), np.eye(d), m, 4 * np.eye(d)) == pytest.approx(
      0.45 + d)


def test_fid_singular_covariance_uses_ridge():
  d = 4
  sigma = np.diag([1.0, 1.0, 0.0, 0.0])
  value = fid.frechet_distance(np.zeros(d), sigma, np.zeros(d), sigma)
  assert value == pytest.approx(0.0, abs=1e-5)


def test_fid_needs_two_samples():
  stats = fid.FeatureStatistics()
  stats.update(np.zeros((1, 3)))
  with pytest.raises(ValueError, match='at least 2'):
    stats.mean_and_covariance()
