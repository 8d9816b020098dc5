"""What a representation carries of a quantity: a ridge regression fitted on training examples
and scored by R^2 on held-out ones (a linear probe). The synthetic benchmarks use it to ask how
much of the head's turn and of the mouth's opening the keypoints know, whatever the warp then
makes of them.
"""

from __future__ import annotations

import numpy as np


def changes_since_first(values: np.ndarray, clip_length: int) -> np.ndarray:
  """values (N, D) of consecutive clips of `clip_length` frames each -> (N, D), each frame's
  change since its own clip's first frame."""
  values = np.asarray(values, np.float64)
  if values.ndim != 2 or len(values) % clip_length:
    raise ValueError(f'changes_since_first: values {values.shape} must be (N, D) with N a '
                     f'multiple of clip_length={clip_length}')
  clips = values.reshape(-1, clip_length, values.shape[1])
  return (clips - clips[:, :1]).reshape(values.shape)


def ridge_probe_r2(train_features: np.ndarray, train_targets: np.ndarray,
                   test_features: np.ndarray, test_targets: np.ndarray,
                   penalty: float = 1e-3) -> np.ndarray:
  """Held-out R^2 (T,) of a ridge regression from features (N, F) to targets (N, T).

  The features are standardised by the training set's mean and deviation; the ridge penalty is
  `penalty` times the number of training examples (so it does not fade as they grow). R^2 is
  1 - mean squared error / variance of each held-out target: 1 read exactly, 0 no better than
  the held-out mean, below 0 worse (over-fitted)."""
  train_features = np.asarray(train_features, np.float64)
  test_features = np.asarray(test_features, np.float64)
  train_targets = np.asarray(train_targets, np.float64)
  test_targets = np.asarray(test_targets, np.float64)
  if (train_features.ndim != 2 or test_features.shape[1:] != train_features.shape[1:]
      or train_targets.shape != (len(train_features), test_targets.shape[-1])
      or test_targets.shape[0] != len(test_features)):
    raise ValueError(f'ridge_probe_r2: features {train_features.shape} / {test_features.shape} '
                     f'and targets {train_targets.shape} / {test_targets.shape} do not match '
                     '((N, F), (M, F), (N, T), (M, T))')
  mean, deviation = train_features.mean(0), train_features.std(0) + 1e-8
  a = (train_features - mean) / deviation
  b = (test_features - mean) / deviation
  offset = train_targets.mean(0)
  gram = a.T @ a + penalty * len(a) * np.eye(a.shape[1])
  weights = np.linalg.solve(gram, a.T @ (train_targets - offset))
  return r_squared(b @ weights + offset, test_targets)


def r_squared(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
  """1 - mean squared error / variance of the target, over axis 0 (per column of (N, T), or a
  scalar for (N,)): 1 exact, 0 no better than the target's mean, below 0 worse."""
  predicted = np.asarray(predicted, np.float64)
  target = np.asarray(target, np.float64)
  return 1. - ((predicted - target) ** 2).mean(0) / np.maximum(target.var(0), 1e-12)
