"""Geometry errors against ground truth: depth L1 and normal angle on a face mask.

Used on the synthetic heads, whose frames carry exact depth and normals: the inverse renderer's
depth and normal of a generated frame are compared with the driving frame's ground truth, and the
same comparison on the real driving frame is the floor (the inverse renderer's own error).
"""

from __future__ import annotations

import numpy as np


def _check(name: str, predicted: np.ndarray, target: np.ndarray, mask: np.ndarray,
           channels: int) -> None:
  if predicted.shape != target.shape or predicted.shape[-1] != channels:
    raise ValueError(f'{name}: predicted {predicted.shape} and target {target.shape} must both be '
                     f'(B, H, W, {channels})')
  if mask.shape != predicted.shape[:-1]:
    raise ValueError(f'{name}: mask {mask.shape} must be (B, H, W) = {predicted.shape[:-1]}')
  if not mask.any():
    raise ValueError(f'{name}: the mask selects no pixel')


def masked_depth_l1(predicted: np.ndarray, target: np.ndarray, mask: np.ndarray,
                    target_range: tuple[float, float] | None = None) -> float:
  """Mean |predicted - target| over the masked pixels.

  Args:
    predicted: (B, H, W, 1) depth.
    target: (B, H, W, 1) ground-truth depth, first clipped to `target_range` when given (the range
      the inverse renderer can output).
    mask: (B, H, W) bool, the pixels to compare (e.g. the face silhouette).
  """
  predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
  mask = np.asarray(mask, bool)
  _check('masked_depth_l1', predicted, target, mask, 1)
  if target_range is not None:
    target = np.clip(target, *target_range)
  return float(np.abs(predicted - target)[..., 0][mask].mean())


def normal_angle_degrees(predicted: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
  """Mean angle in degrees (0..180) between predicted and target normals over the masked pixels.

  Args:
    predicted, target: (B, H, W, 3) normals (normalised here; zero vectors count as 90 degrees).
    mask: (B, H, W) bool.
  """
  predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
  mask = np.asarray(mask, bool)
  _check('normal_angle_degrees', predicted, target, mask, 3)

  def unit(v):
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(norm > 0, v / np.maximum(norm, 1e-12), 0.)
  cosine = np.clip((unit(predicted) * unit(target)).sum(-1), -1., 1.)
  return float(np.degrees(np.arccos(cosine))[mask].mean())
