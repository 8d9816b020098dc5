"""L1 (0-255 scale), PSNR by their formulas; SSIM against scikit-image's Gaussian-window SSIM."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax.metrics import pixel
from g3fa_jax.metrics import ssim


def _pair(shape=(3, 40, 48, 3), seed=0):
  rng = np.random.default_rng(seed)
  a = rng.uniform(size=shape).astype(np.float32)
  b = np.clip(a + rng.normal(scale=0.1, size=shape), 0, 1).astype(np.float32)
  return a, b


def test_l1_on_255_scale():
  a, b = _pair()
  expected = [np.mean(np.abs(a[i].astype(np.float64) * 255 - b[i].astype(np.float64) * 255))
              for i in range(len(a))]
  np.testing.assert_allclose(pixel.l1_255(a, b), expected, rtol=1e-5)


def test_psnr_formula():
  a, b = _pair()
  mse = ((a.astype(np.float64) - b) ** 2).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(pixel.psnr(a, b), 10 * np.log10(1 / mse), rtol=1e-5)
  assert float(pixel.psnr(a[:1], a[:1])[0]) == pytest.approx(100.0)  # floored MSE


def test_ssim_matches_skimage_gaussian():
  metrics = pytest.importorskip('skimage.metrics')
  a, b = _pair()
  ours = np.asarray(ssim.ssim(a, b))
  expected = [metrics.structural_similarity(
      a[i].astype(np.float64), b[i].astype(np.float64), gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False, data_range=1.0, channel_axis=-1) for i in range(len(a))]
  np.testing.assert_allclose(ours, expected, atol=2e-5)
  np.testing.assert_allclose(ssim.ssim(a, a), 1.0, atol=1e-5)


def test_ssim_window_is_scipy_gaussian():
  ndimage = pytest.importorskip('scipy.ndimage')
  impulse = np.zeros(21)
  impulse[10] = 1
  expected = ndimage.gaussian_filter1d(impulse, 1.5, truncate=3.5)[5:16]
  np.testing.assert_allclose(ssim.gaussian_window(), expected, rtol=1e-6)


def test_ssim_rejects_tiny_images():
  with pytest.raises(ValueError, match='at least 11'):
    ssim.ssim(np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 3)))
