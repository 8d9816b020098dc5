"""Sphere tracing of the synthetic heads in JAX: image, exact depth, normals and mask per frame.

Every pixel's ray marches a fixed number of steps through the scene's signed distance field
(`sdf.scene_parts`), so one compiled function (per image size and frame count) renders any
identity and clip, vmapped over the frames. On the visible surface:
  depth   the hit point's z in the camera frame (Unsup3D's depth; `camera` describes the camera),
  normal  the unit gradient of the distance field, in Unsup3D's normal convention, which is what
          `g3fa_jax.models.inverse_renderer.normals_from_depth` computes from depth: the outward
          normal with all three camera-frame components negated, so (0, 0, 1) faces the camera and
          surfaces seen from the image's right have negative x.
Elsewhere (background) depth is `camera.BACKGROUND_DEPTH`, normal (0, 0, 1) and mask 0.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from g3fa_jax.synthetic import camera
from g3fa_jax.synthetic import clips as clips_lib
from g3fa_jax.synthetic import sdf
from g3fa_jax.synthetic import shading

MARCH_STEPS = 40
SHADOW_STEPS = 10
# Rays start this many head units in front of the pivot (beyond the nose tip in any pose).
NEAR_MARGIN = 1.8
# A ray hits a surface that it passes within this fraction of its pixel's footprint; hits are
# then refined to within HIT_EPSILON head units (about 5e-6 in depth) of the surface.
FOOTPRINT_FRACTION = 0.25
REFINE_STEPS = 4
# Surfaces this close to the background plane count as background (keeps the two apart).
FAR_MARGIN = 1e-3
HIT_EPSILON = 1e-4
_AO_DELTAS = (0.05, 0.12, 0.25, 0.4)
_NORMAL_STEP = 1e-3
_MIN_FACING = 0.01


def _scene(p_body: jax.Array, identity: Any, frame: clips_lib.Frames
           ) -> tuple[jax.Array, sdf.Parts]:
  return sdf.scene_parts(p_body, frame.rotation, identity, frame.mouth, frame.blink, frame.brow)


def _distance(p_body: jax.Array, identity: Any, frame: clips_lib.Frames) -> jax.Array:
  return _scene(p_body, identity, frame)[0]


def _march(rays: jax.Array, origin: jax.Array, scale: jax.Array, identity: Any,
           frame: clips_lib.Frames, steps: int, footprint: float
           ) -> tuple[jax.Array, jax.Array]:
  """Sphere-traces (3, N) rays of unit z; returns (depth (N,), hit (N,)).

  A ray stops where it first comes within FOOTPRINT_FRACTION of its pixel's footprint of a
  surface (`footprint`: pixel pitch per unit depth, head units): from there the surface covers
  its pixel, whether the ray meets it head-on or grazes an edge. REFINE_STEPS secant steps then
  converge the rays that cross the surface onto it (exact depth); a ray that does not converge
  within a pixel's footprint of its stop (one grazing an edge) keeps its stop, a fraction of a
  pixel off the surface.
  """
  ray_len = sdf.length(rays)
  t_far = jnp.float32(camera.BACKGROUND_DEPTH)
  to_body = lambda t: (t * rays - origin[:, None]) / scale
  distance = lambda t: _distance(to_body(t), identity, frame)

  def body(_, t):
    d = distance(t)
    near = d < FOOTPRINT_FRACTION * footprint * t
    return jnp.where(near, t, jnp.minimum(t + 0.9 * d * scale / ray_len, t_far))

  t0 = jnp.full(rays.shape[1:], origin[2] - NEAR_MARGIN * scale)
  t = jax.lax.fori_loop(0, steps, body, t0)
  d = distance(t)
  hit = (d < FOOTPRINT_FRACTION * footprint * t) & (t < t_far - FAR_MARGIN)

  def secant(_, carry):  # converges superlinearly where the ray crosses the surface
    r_prev, d_prev, r, d_r = carry
    slope = d_r - d_prev
    ok = jnp.abs(slope) > 1e-12
    r_next = jnp.where(ok, r - d_r * (r - r_prev) / jnp.where(ok, slope, 1.), r)
    return r, d_r, r_next, distance(r_next)

  first = t + d * scale / ray_len
  _, _, refined, d_refined = jax.lax.fori_loop(0, REFINE_STEPS, secant,
                                               (t, d, first, distance(first)))
  # A ray that overshot into a thin part (d < 0) goes back to its entry, however far.
  exact = ((jnp.abs(d_refined) < HIT_EPSILON)
           & ((jnp.abs(refined - t) < footprint * t * scale) | (d < 0)))
  return jnp.where(hit, jnp.where(exact, refined, t), t_far), hit


def _outward_normal(p: jax.Array, identity: Any, frame: clips_lib.Frames) -> jax.Array:
  """(3, N) unit gradient of the distance field at (3, N) body-frame points.

  Tetrahedral central differences with a step of 1e-3 head units (about 1/60 of a pixel at
  128 x 128): the error is far below float32 noise in a 16-bit map, and it compiles in a fraction
  of the time of `jax.grad` through the whole field.
  """
  k = jnp.array([[1., -1., -1., 1.], [-1., -1., 1., 1.], [-1., 1., -1., 1.]])  # (3, 4)
  dist = _distance(p[:, None] + _NORMAL_STEP * k[:, :, None], identity, frame)  # (4, N)
  gradient = jnp.einsum('ck,kn->cn', k, dist, precision=jax.lax.Precision.HIGHEST)
  return gradient / jnp.maximum(sdf.length(gradient), 1e-12)


def _facing(normal: jax.Array, view: jax.Array) -> jax.Array:
  """Normals tilted, where needed, to face the camera at least slightly (n . view >= 0.01).

  Only pixels whose ray grazes a thin edge (and stopped a fraction of a pixel off the surface,
  next to the edge's far side) need it: about 0.1% of the head's pixels.
  """
  lacking = jnp.maximum(_MIN_FACING - sdf.dot(normal, view), 0.)
  tilted = normal + lacking * view
  return tilted / sdf.length(tilted)


def _soft_shadow(p: jax.Array, light: jax.Array, identity: Any, frame: clips_lib.Frames,
                 steps: int) -> jax.Array:
  """(N,) visibility in [0, 1] of the key light from (3, N) body-frame surface points p."""
  def body(_, carry):
    t, res = carry
    h = _distance(p + t * light[:, None], identity, frame)
    return t + jnp.clip(h, 0.03, 0.4), jnp.minimum(res, 8. * h / t)

  init = (jnp.full(p.shape[1:], 0.04), jnp.ones(p.shape[1:]))
  _, res = jax.lax.fori_loop(0, steps, body, init)
  res = jnp.clip(res, 0., 1.)
  return res * res * (3. - 2. * res)


def _occlusion(p: jax.Array, normal: jax.Array, identity: Any, frame: clips_lib.Frames
               ) -> jax.Array:
  """(N,) ambient visibility in [0, 1] from a few distance samples along the normals."""
  deltas = jnp.asarray(_AO_DELTAS, jnp.float32)
  samples = p[:, None] + deltas[:, None] * normal[:, None]  # one batched call: (3, K, N)
  dist = _distance(samples, identity, frame)
  occ = jnp.sum((deltas[:, None] - dist) / (2. ** jnp.arange(len(_AO_DELTAS)))[:, None], 0)
  return jnp.clip(1. - 1.5 * occ, 0., 1.)


def render_frame(identity: Any, frame: clips_lib.Frames, size: int,
                 steps: int = MARCH_STEPS, shadow_steps: int = SHADOW_STEPS
                 ) -> dict[str, jax.Array]:
  """One frame (unbatched `Frames` fields) -> image, depth, normal, mask (S, S, C) float32.

  image (S, S, 3) sRGB in [0, 1]; depth (S, S, 1); normal (S, S, 3) unit; mask (S, S, 1) in {0, 1}.
  """
  rays = jnp.asarray(camera.ray_directions(size).T)  # (3, N)
  scale = camera.HEAD_SCALE * identity.scale
  origin = camera.pivot(frame.translation, identity.scale)
  footprint = 1. / camera.focal_length(size) / scale  # pixel pitch per unit depth, head units
  t, hit = _march(rays, origin, scale, identity, frame, steps, footprint)
  p_body = (t * rays - origin[:, None]) / scale
  _, parts = _scene(p_body, identity, frame)
  view = -rays / sdf.length(rays)
  outward = _facing(_outward_normal(p_body, identity, frame), view)
  material = shading.material_ids(parts, identity, frame.mouth, frame.gaze)
  albedo = shading.albedo(material, parts, p_body, identity)
  surface = p_body + 0.01 * outward
  shadow = (_soft_shadow(surface, frame.light_dir, identity, frame, shadow_steps)
            if shadow_steps else jnp.ones_like(t))
  occlusion = _occlusion(surface, outward, identity, frame)
  colour = shading.shade(albedo, material, outward, view, frame.light_dir, frame.light_colour,
                         frame.ambient, shadow, occlusion)
  bg = shading.background(size, frame.bg_top, frame.bg_bottom, frame.bg_seed)
  image = shading.to_srgb(jnp.where(hit, colour, bg))
  depth = jnp.where(hit, t, camera.BACKGROUND_DEPTH)[None]
  normal = jnp.where(hit, -outward, jnp.array([0., 0., 1.])[:, None])
  image_shape = lambda x: jnp.moveaxis(x, 0, -1).reshape(size, size, x.shape[0])
  return {'image': image_shape(image), 'depth': image_shape(depth),
          'normal': image_shape(normal), 'mask': image_shape(hit[None].astype(jnp.float32))}


@functools.partial(jax.jit, static_argnames=('size', 'steps', 'shadow_steps'))
def render_frames(identity: Any, frames: clips_lib.Frames, size: int,
                  steps: int = MARCH_STEPS, shadow_steps: int = SHADOW_STEPS
                  ) -> dict[str, jax.Array]:
  """T frames of one identity -> dict of (T, S, S, C) arrays (see `render_frame`)."""
  return jax.vmap(lambda f: render_frame(identity, f, size, steps, shadow_steps))(frames)


def to_8bit(image: Any) -> np.ndarray:
  """Rendered (..., 3) colours in [0, 1] (values outside are clipped) -> uint8, as clips are
  stored."""
  return np.round(np.clip(np.asarray(image), 0., 1.) * 255.).astype(np.uint8)


def as_stored(image: Any) -> np.ndarray:
  """Rendered colours as the stored clips hold them: rounded to 8 bits, float32 in [0, 1]."""
  return (to_8bit(image) / 255.).astype(np.float32)


def render_clip(clip: clips_lib.Clip, size: int, steps: int = MARCH_STEPS,
                shadow_steps: int = SHADOW_STEPS) -> dict[str, np.ndarray]:
  """A whole clip -> numpy dict of image, depth, normal, mask, each (T, S, S, C) float32."""
  out = render_frames(clip.identity, clip.frames, size=size, steps=steps,
                      shadow_steps=shadow_steps)
  return {k: np.asarray(v) for k, v in out.items()}
