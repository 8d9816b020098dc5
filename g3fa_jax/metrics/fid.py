"""Frechet Inception Distance: feature statistics (float64, streamed) and the Frechet distance.

FID = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrt(S1 S2)), computed as pytorch-fid does
(`scipy.linalg.sqrtm` of the product; a small ridge when it is singular; the imaginary part of the
result dropped when it is negligible). Statistics are accumulated from batches of Inception pool3
features without keeping the features, so a dataset of any size needs O(d^2) memory.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy import linalg


@dataclasses.dataclass
class FeatureStatistics:
  """Running mean and covariance of feature vectors, in float64.

  Attributes:
    count: number of vectors seen.
    total: (d,) their sum.
    outer: (d, d) sum of their outer products.
  """
  count: int = 0
  total: np.ndarray | None = None
  outer: np.ndarray | None = None

  def update(self, features) -> None:
    """Adds a batch of features (N, d)."""
    f = np.asarray(features, np.float64).reshape(len(features), -1)
    if self.total is None:
      self.total = np.zeros(f.shape[1])
      self.outer = np.zeros((f.shape[1], f.shape[1]))
    self.count += f.shape[0]
    self.total += f.sum(axis=0)
    self.outer += f.T @ f

  def mean_and_covariance(self) -> tuple[np.ndarray, np.ndarray]:
    """(mu (d,), sigma (d, d)): the mean and the unbiased covariance (as `np.cov`)."""
    if self.count < 2:
      raise ValueError(f'FID needs at least 2 feature vectors, got {self.count}')
    mu = self.total / self.count
    sigma = (self.outer - self.count * np.outer(mu, mu)) / (self.count - 1)
    return mu, sigma


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
  """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

  Args:
    mu1, mu2: (d,) means.
    sigma1, sigma2: (d, d) covariances.
    eps: ridge added to both covariances when the product's square root is not finite.

  Returns:
    The distance (a Python float).
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f'statistics of different dimensions: {mu1.shape} vs {mu2.shape}')
  diff = mu1 - mu2
  with warnings.catch_warnings():  # a singular product is handled below, as pytorch-fid does
    warnings.simplefilter('ignore', linalg.LinAlgWarning)
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
      offset = np.eye(sigma1.shape[0]) * eps
      covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f'FID: imaginary component {np.max(np.abs(covmean.imag)):.3g} in the '
                       'square root of the covariance product')
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_statistics(a: FeatureStatistics, b: FeatureStatistics) -> float:
  """FID between two accumulated feature sets."""
  return frechet_distance(*a.mean_and_covariance(), *b.mean_and_covariance())
