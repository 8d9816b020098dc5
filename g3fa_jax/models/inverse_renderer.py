"""Depth and normal maps of face images with the frozen Unsup3D depth network (official
`modules/unsupmodel.py`, `Demo_class.run`), batched, jittable and differentiable in the images.

Pipeline: resize to `image_size` (64; via 2*image_size first when the input is larger than
4*image_size in both sides), map [0, 1] -> [-1, 1], run the EDDeconv depth net, subtract each
image's mean, tanh, rescale to [min_depth, max_depth], set the two leftmost and two rightmost
columns to `border_depth`, compute normals from the back-projected depth with a pinhole camera of
field of view `fov`, then resize depth and normal to the output size (bilinear,
align_corners=False).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from g3fa_jax.ops.resize import resize_bilinear

NORMAL_EPS = 1e-7


def _inverse_intrinsics(size: int, fov_degrees: float) -> np.ndarray:
  """Inverse of K = [[f, 0, c], [0, f, c], [0, 0, 1]], f = (size-1)/2 / tan(fov/2), c = (size-1)/2."""
  f = (size - 1) / 2 / np.tan(fov_degrees / 2 * np.pi / 180)
  c = (size - 1) / 2
  k = np.array([[f, 0., c], [0., f, c], [0., 0., 1.]], np.float32)
  return np.linalg.inv(k.astype(np.float64)).astype(np.float32)


def depth_to_points(depth: jax.Array, fov_degrees: float) -> jax.Array:
  """Back-projects a square depth map: (B, S, S) -> camera-space points (B, S, S, 3).

  Pixel (row y, column x) goes to depth * K^-1 (x, y, 1).
  """
  size = depth.shape[-1]
  inv_k = jnp.asarray(_inverse_intrinsics(size, fov_degrees))
  ys, xs = np.meshgrid(np.arange(depth.shape[-2], dtype=np.float32),
                       np.arange(size, dtype=np.float32), indexing='ij')
  pixels = jnp.asarray(np.stack([xs, ys, np.ones_like(xs)], axis=-1))  # (S, S, 3) as (x, y, 1)
  rays = jnp.einsum('hwk,jk->hwj', pixels, inv_k, precision=jax.lax.Precision.HIGHEST)
  return rays[None] * depth[..., None]


def normals_from_depth(depth: jax.Array, fov_degrees: float) -> jax.Array:
  """Unit normals of a depth map: (B, S, S) -> (B, S, S, 3); the one-pixel border is (0, 0, 1).

  n = (p[y, x+1] - p[y, x-1]) x (p[y+1, x] - p[y-1, x]), divided by |n| + 1e-7.
  """
  points = depth_to_points(depth, fov_degrees)
  tu = points[:, 1:-1, 2:] - points[:, 1:-1, :-2]
  tv = points[:, 2:, 1:-1] - points[:, :-2, 1:-1]
  inner = jnp.cross(tu, tv)
  border = jnp.asarray([0., 0., 1.], inner.dtype)  # float32 points even for a bfloat16 depth
  normal = jnp.broadcast_to(border, points.shape).at[:, 1:-1, 1:-1].set(inner)
  norm = jnp.sqrt(jnp.sum(normal ** 2, axis=-1, keepdims=True))
  return normal / (norm + NORMAL_EPS)


def canonical_depth(raw: jax.Array, min_depth: float, max_depth: float,
                    border_depth: float) -> jax.Array:
  """Raw net output (B, S, S) -> depth in [min_depth, max_depth] with 2-column borders fixed."""
  d = raw - jnp.mean(raw.reshape(raw.shape[0], -1), axis=1)[:, None, None]
  d = jnp.tanh(d)
  d = (1 + d) / 2 * max_depth + (1 - d) / 2 * min_depth
  columns = np.arange(d.shape[-1])
  is_border = (columns < 2) | (columns >= d.shape[-1] - 2)
  return jnp.where(jnp.asarray(is_border), jnp.asarray(border_depth, d.dtype), d)


def unsup3d_depth_and_normal(apply_fn: Callable[..., jax.Array], variables: Mapping[str, Any],
                             images: jax.Array, cfg: Any,
                             output_size: Optional[tuple[int, int]] = None
                             ) -> tuple[jax.Array, jax.Array]:
  """Canonical depth and normal maps of a batch of face images.

  Args:
    apply_fn: the depth net's apply, called as `apply_fn(variables, x)` with x (B, S, S, 3) in
      [-1, 1] returning (B, S, S, 1) raw depth (e.g. `EDDeconv(...).apply`).
    variables: the depth net's variables, e.g. {'params': ...}.
    images: (B, H, W, 3) float images in [0, 1].
    cfg: Unsup3D settings with `image_size` (S), `min_depth`, `max_depth`, `border_depth`, `fov`
      (degrees), e.g. `model_config.unsup3d_config()`.
    output_size: (h, w) of the returned maps; default the input's (H, W).

  Returns:
    depth (B, h, w, 1) in about [min_depth, max_depth] and normal (B, h, w, 3) unit vectors.
  """
  size = int(cfg.image_size)
  _, h, w, _ = images.shape
  out_h, out_w = output_size if output_size is not None else (h, w)
  x = images
  if h > size * 4 and w > size * 4:  # Avoids aliasing when shrinking large frames.
    x = resize_bilinear(x, (size * 2, size * 2), align_corners=False)
  x = resize_bilinear(x, (size, size), align_corners=False)
  x = x * 2. - 1.
  raw = apply_fn(variables, x)[..., 0]
  depth = canonical_depth(raw, cfg.min_depth, cfg.max_depth, cfg.border_depth)
  normal = normals_from_depth(depth, cfg.fov)
  depth = resize_bilinear(depth[..., None], (out_h, out_w), align_corners=False)
  normal = resize_bilinear(normal, (out_h, out_w), align_corners=False)
  return depth, normal
