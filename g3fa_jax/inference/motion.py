"""Relative motion transfer (First Order Motion Model's `normalize_kp`).

A driving video moves a *different* face, so its absolute keypoints do not fit the source. FOMM
transfers the motion relative to a reference driving frame instead:

  value    = s * (kp_driving - kp_driving_initial) + kp_source
  jacobian = J_driving @ inv(J_driving_initial) @ J_source
  s        = sqrt(area(hull(kp_source)) / area(hull(kp_driving_initial)))  (adapted movement scale)

where `area(hull(.))` is the area of the convex hull of the K keypoints (s = 1 without adaptation).
Keypoints are dicts {'value': (B, K, 2), 'jacobian': (B, K, 2, 2)} with (x, y) in [-1, 1].
"""

from __future__ import annotations

from typing import Mapping

import jax.numpy as jnp
import numpy as np

# Below this hull area (in squared [-1, 1] units) the keypoints are taken as degenerate.
_MIN_AREA = 1e-8


def convex_hull_area(points: np.ndarray) -> float:
  """Area of the convex hull of 2-D points (N, 2); 0 for fewer than 3 or collinear points.

  Andrew's monotone chain, then the shoelace formula (what `scipy.spatial.ConvexHull(p).volume`
  gives for 2-D points).
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[1] != 2:
    raise ValueError(f'expected points of shape (N, 2), got {points.shape}')
  pts = np.unique(points, axis=0)  # Sorted by x, then y.
  if len(pts) < 3:
    return 0.0

  def cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

  def half(seq):
    chain = []
    for p in seq:
      while len(chain) >= 2 and cross(chain[-2], chain[-1], p) <= 0:
        chain.pop()
      chain.append(p)
    return chain[:-1]

  hull = np.asarray(half(pts) + half(pts[::-1]))
  if len(hull) < 3:
    return 0.0
  x, y = hull[:, 0], hull[:, 1]
  return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def movement_scale(source_values: np.ndarray, driving_initial_values: np.ndarray) -> np.ndarray:
  """FOMM's adapted movement scale per batch element.

  Args:
    source_values: (B, K, 2) source keypoints.
    driving_initial_values: (B, K, 2) or (1, K, 2) keypoints of the reference driving frame.

  Returns:
    (B,) float32 `sqrt(area_source / area_driving_initial)`; 1 where either hull is degenerate
    (FOMM would fail there: scipy raises on collinear points).
  """
  source_values = np.asarray(source_values)
  driving_initial_values = np.broadcast_to(np.asarray(driving_initial_values),
                                           source_values.shape)
  scales = []
  for src, drv in zip(source_values, driving_initial_values):
    a_src, a_drv = convex_hull_area(src), convex_hull_area(drv)
    scales.append(np.sqrt(a_src / a_drv) if min(a_src, a_drv) > _MIN_AREA else 1.0)
  return np.asarray(scales, np.float32)


def inverse_2x2(m: jnp.ndarray) -> jnp.ndarray:
  """Inverse of (..., 2, 2) matrices by the adjugate formula."""
  a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
  det = a * d - b * c
  adjugate = jnp.stack([jnp.stack([d, -b], -1), jnp.stack([-c, a], -1)], -2)
  return adjugate / det[..., None, None]


def relative_keypoints(kp_source: Mapping[str, jnp.ndarray], kp_driving: Mapping[str, jnp.ndarray],
                       kp_driving_initial: Mapping[str, jnp.ndarray], scale=1.0,
                       relative_jacobian: bool = True) -> dict[str, jnp.ndarray]:
  """Driving motion moved onto the source (jit-friendly; batch dimensions broadcast).

  Args:
    kp_source: {'value': (B or 1, K, 2), 'jacobian': (B or 1, K, 2, 2)}.
    kp_driving: same keys, (T, K, ...) for T driving frames.
    kp_driving_initial: same keys, (1, K, ...): the reference driving frame.
    scale: scalar or (T or 1,) movement scale (see `movement_scale`).
    relative_jacobian: transfer jacobians relatively (else keep the driving ones).

  Returns:
    {'value': (T, K, 2), 'jacobian': (T, K, 2, 2)} (no jacobian if the inputs have none).
  """
  scale = jnp.reshape(jnp.asarray(scale, kp_driving['value'].dtype), (-1, 1, 1))
  out = dict(kp_driving)
  out['value'] = scale * (kp_driving['value'] - kp_driving_initial['value']) + kp_source['value']
  if relative_jacobian and 'jacobian' in kp_driving:
    change = kp_driving['jacobian'] @ inverse_2x2(kp_driving_initial['jacobian'])
    out['jacobian'] = change @ kp_source['jacobian']
  return out


def normalize_kp(kp_source: Mapping[str, jnp.ndarray], kp_driving: Mapping[str, jnp.ndarray],
                 kp_driving_initial: Mapping[str, jnp.ndarray], adapt_movement_scale: bool = False,
                 use_relative_movement: bool = False,
                 use_relative_jacobian: bool = False) -> dict[str, jnp.ndarray]:
  """FOMM's `normalize_kp` with its flags (the official `animate_params.normalization_params`).

  The scale comes from the first batch element of `kp_source` and `kp_driving_initial`, as in
  FOMM; without `use_relative_movement` the driving keypoints are returned unchanged.
  """
  if not use_relative_movement:
    return dict(kp_driving)
  scale = 1.0
  if adapt_movement_scale:
    scale = movement_scale(np.asarray(kp_source['value'][:1]),
                           np.asarray(kp_driving_initial['value'][:1]))[0]
  return relative_keypoints(kp_source, kp_driving, kp_driving_initial, scale,
                            relative_jacobian=use_relative_jacobian)
