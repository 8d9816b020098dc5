"""The synthetic camera: Unsup3D's pinhole camera, so the ground truth speaks its language.

Camera frame: x to the image's right, y down, z forward (away from the camera), camera at the
origin. A square S x S image has the intrinsics Unsup3D uses to turn depth into normals
(`g3fa_jax.models.inverse_renderer`): field of view 10 degrees, f = (S - 1) / 2 / tan(5 deg),
principal point ((S - 1) / 2, (S - 1) / 2), pixel (column x, row y) <-> ray K^-1 (x, y, 1).
Depth is the z coordinate (as in Unsup3D), which with rays of unit z is also the ray parameter.

Scene layout: the head's pivot sits about HEAD_DISTANCE in front of the camera, so visible
depths lie in about [0.9, 1.06] (nose tip to the hair at the back of a turned head) and the flat
background at BACKGROUND_DEPTH behind them, all inside Unsup3D's depth range [0.9, 1.1] (which its
tanh output reaches only asymptotically) and the record format's [0.8, 1.2].
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

FOV_DEGREES = 10.0
HEAD_DISTANCE = 1.0
# World units per head unit: the head with its hair is about 60% of the frame high.
HEAD_SCALE = 0.048
# Pivot height (world units) below the optical axis: the face's centre lands near the middle.
PIVOT_Y = 0.004
BACKGROUND_DEPTH = 1.08


def focal_length(size: int) -> float:
  """Focal length in pixels of an S x S image."""
  return (size - 1) / 2 / math.tan(math.radians(FOV_DEGREES) / 2)


def ray_directions(size: int) -> np.ndarray:
  """(S * S, 3) float32 rays K^-1 (x, y, 1) of the pixels in row-major order (unit z)."""
  c = (size - 1) / 2
  f = focal_length(size)
  ys, xs = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64),
                       indexing='ij')
  return np.stack([(xs - c) / f, (ys - c) / f, np.ones_like(xs)], -1).reshape(-1, 3).astype(
      np.float32)


def project(points: jax.Array, size: int) -> jax.Array:
  """(..., 3) camera-frame points -> (..., 2) pixel coordinates (column x, row y)."""
  c = (size - 1) / 2
  f = focal_length(size)
  return points[..., :2] / points[..., 2:] * f + c


def pivot(translation: jax.Array, scale: jax.Array) -> jax.Array:
  """[3] camera-frame position of the head's pivot for a head-unit offset and a size factor."""
  return (jnp.array([0., PIVOT_Y, HEAD_DISTANCE], jnp.float32)
          + HEAD_SCALE * scale * translation)
