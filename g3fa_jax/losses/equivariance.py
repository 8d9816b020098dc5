"""Keypoint equivariance under a random thin-plate-spline warp (official `Transform` and losses).

A transform is a plain dict of arrays, so it can be drawn inside a jitted step, logged or replayed:
  theta (B, 2, 3): affine part, identity + N(0, sigma_affine);
  control_points (1, P, P, 2): the P x P coordinate grid in [-1, 1] (absent without TPS);
  control_params (B, 1, P*P): TPS weights, N(0, sigma_tps) (absent without TPS).
The official TPS term deviates from the textbook one, and is kept exactly: the distance to a
control point is the L1 norm |dx| + |dy|, the kernel is d^2 * log(d + 1e-6), and the resulting
scalar offset is added to both x and y.
"""

from __future__ import annotations

from typing import Mapping, Optional

import jax
import jax.numpy as jnp
from jax import lax

from g3fa_jax.ops.grid import make_coordinate_grid
from g3fa_jax.ops.grid_sample import grid_sample

Tps = Mapping[str, jax.Array]

_HIGHEST = lax.Precision.HIGHEST


def sample_tps(rng: jax.Array, batch: int, sigma_affine: float,
               sigma_tps: Optional[float] = None, points_tps: Optional[int] = None
               ) -> dict[str, jax.Array]:
  """Draws a random transform per batch element (official `Transform.__init__`).

  Without `sigma_tps` and `points_tps` the transform is affine only.
  """
  affine_rng, tps_rng = jax.random.split(rng)
  noise = sigma_affine * jax.random.normal(affine_rng, (batch, 2, 3), jnp.float32)
  tps = {'theta': noise + jnp.eye(2, 3, dtype=jnp.float32)[None]}
  if sigma_tps is not None and points_tps is not None:
    tps['control_points'] = make_coordinate_grid((points_tps, points_tps))[None]
    tps['control_params'] = sigma_tps * jax.random.normal(
        tps_rng, (batch, 1, points_tps ** 2), jnp.float32)
  return tps


def warp_coordinates(tps: Tps, coordinates: jax.Array) -> jax.Array:
  """Applies the transform to points (official `Transform.warp_coordinates`).

  Args:
    tps: a transform from `sample_tps` (batch B).
    coordinates: (B, N, 2) or (1, N, 2) points (x, y) in [-1, 1].

  Returns:
    (B, N, 2) warped points.
  """
  theta = tps['theta'].astype(coordinates.dtype)[:, None]  # (B, 1, 2, 3)
  x = coordinates[..., 0:1]  # (Bc, N, 1)
  y = coordinates[..., 1:2]
  transformed = theta[..., 0] * x + theta[..., 1] * y + theta[..., 2]  # (B, N, 2)
  if 'control_params' in tps:
    control_points = tps['control_points'].astype(coordinates.dtype).reshape(-1, 2)
    params = tps['control_params'].astype(coordinates.dtype)  # (B, 1, P*P)
    distances = jnp.sum(jnp.abs(coordinates[:, :, None, :] - control_points), axis=-1)
    result = distances ** 2 * jnp.log(distances + 1e-6) * params  # (B, N, P*P)
    transformed = transformed + jnp.sum(result, axis=2)[..., None]
  return transformed


def warp_jacobian(tps: Tps, coordinates: jax.Array) -> jax.Array:
  """d warp / d point at each point (official `Transform.jacobian`), exact by forward-mode AD.

  Args:
    tps: a transform from `sample_tps` (batch B).
    coordinates: (B, N, 2) points.

  Returns:
    (B, N, 2, 2): [..., i, j] = d warped_i / d point_j.
  """
  def warp_point(theta, params, point):
    single = {'theta': theta[None]}
    if params is not None:
      single['control_points'] = tps['control_points']
      single['control_params'] = params[None]
    return warp_coordinates(single, point[None, None])[0, 0]

  per_point = jax.vmap(jax.jacfwd(warp_point, argnums=2), in_axes=(None, None, 0))
  return jax.vmap(per_point)(tps['theta'], tps.get('control_params'), coordinates)


def transform_frame(tps: Tps, frames: jax.Array) -> jax.Array:
  """Warps frames by the transform (official `Transform.transform_frame`).

  Output pixel p samples the input at warp(p), bilinear with reflection padding.

  Args:
    tps: a transform from `sample_tps` (batch B).
    frames: (B, H, W, C).

  Returns:
    (B, H, W, C).
  """
  b, h, w, _ = frames.shape
  grid = make_coordinate_grid((h, w)).astype(frames.dtype).reshape(1, h * w, 2)
  grid = warp_coordinates(tps, grid).reshape(b, h, w, 2)
  return grid_sample(frames, grid, padding_mode='reflection')


def equivariance_value_loss(kp_driving_value: jax.Array, transformed_kp_value: jax.Array,
                            tps: Tps, weight: float = 1.0) -> jax.Array:
  """weight * mean|kp(driving) - warp(kp(transform_frame(driving)))|.

  Args:
    kp_driving_value: (B, K, 2) keypoints of the driving frames.
    transformed_kp_value: (B, K, 2) keypoints of the transformed driving frames.
    tps: the transform that produced those frames.
    weight: official `loss_weights.equivariance_value`.
  """
  warped = warp_coordinates(tps, transformed_kp_value)
  return weight * jnp.mean(jnp.abs(kp_driving_value - warped))


def equivariance_jacobian_loss(kp_driving_jacobian: jax.Array, transformed_kp_value: jax.Array,
                               transformed_kp_jacobian: jax.Array, tps: Tps,
                               weight: float = 1.0) -> jax.Array:
  """weight * mean|I - J_driving^-1 (J_warp(kp_transformed) J_transformed)|.

  Args:
    kp_driving_jacobian: (B, K, 2, 2) keypoint jacobians of the driving frames.
    transformed_kp_value: (B, K, 2) keypoints of the transformed frames.
    transformed_kp_jacobian: (B, K, 2, 2) their jacobians.
    tps: the transform that produced those frames.
    weight: official `loss_weights.equivariance_jacobian`.
  """
  jacobian_transformed = jnp.matmul(warp_jacobian(tps, transformed_kp_value),
                                    transformed_kp_jacobian, precision=_HIGHEST)
  value = jnp.matmul(jnp.linalg.inv(kp_driving_jacobian), jacobian_transformed,
                     precision=_HIGHEST)
  eye = jnp.eye(2, dtype=value.dtype)
  return weight * jnp.mean(jnp.abs(eye - value))
