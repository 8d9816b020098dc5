"""Materials, procedural textures and lighting of the synthetic heads (linear RGB inside, sRGB out).

Textures are functions of head-frame (or body-frame) positions, so they stick to the surface as
the head moves: skin with noise, blush and freckles, lips, teeth and mouth, eye white, iris and
pupil following the gaze, strand-like hair and eyebrows, striped or plain clothes. Light: a key
light (Lambert + Blinn-Phong, soft shadow), a weak fill from the other side and a sky-like ambient
term darkened by ambient occlusion.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from g3fa_jax.synthetic import noise
from g3fa_jax.synthetic import sdf

GAMMA = 2.2
# Material order of `material_ids`.
SKIN, LIDS, LIPS, MOUTH, TEETH, EYE_WHITE, IRIS, PUPIL, BROWS, HAIR, CLOTH = range(11)
# Specular strength and shininess per material.
_SPECULAR = np.array([0.12, 0.08, 0.25, 0.05, 0.3, 0.6, 0.6, 0.6, 0.05, 0.15, 0.03], np.float32)
_SHININESS = np.array([24., 16., 40., 8., 40., 90., 90., 90., 8., 14., 4.], np.float32)


def to_linear(srgb: jax.Array) -> jax.Array:
  return jnp.power(jnp.clip(srgb, 0., 1.), GAMMA)


def to_srgb(linear: jax.Array) -> jax.Array:
  return jnp.power(jnp.clip(linear, 0., 1.), 1. / GAMMA)


def _normalize(v: jax.Array) -> jax.Array:
  """Unit vectors of (3, ...) components."""
  return v / jnp.maximum(sdf.length(v), 1e-8)


def gaze_direction(gaze_degrees: jax.Array) -> jax.Array:
  """[2] eye yaw, pitch (degrees) -> [3] head-frame unit view direction (straight ahead: -z)."""
  yaw, pitch = jnp.radians(gaze_degrees[0]), jnp.radians(gaze_degrees[1])
  return jnp.stack([jnp.sin(yaw) * jnp.cos(pitch), -jnp.sin(pitch),
                    -jnp.cos(yaw) * jnp.cos(pitch)])


def material_ids(parts: sdf.Parts, identity: Any, mouth_open: jax.Array, gaze: jax.Array
                 ) -> jax.Array:
  """(...) int32 material of surface points from their parts' distances (`sdf.scene_parts`)."""
  q = parts['head_points']
  candidates = jnp.stack([parts['face'], parts['lids'], parts['eyeballs'], parts['brows'],
                          parts['hair'], parts['torso']])
  which = jnp.argmin(candidates, axis=0)
  cav_c, cav_r = sdf.mouth_geometry(identity, mouth_open)
  inside_mouth = parts['cavity'] < 0.005
  teeth = q[1] < cav_c[1] - 0.25 * cav_r[1]
  face = jnp.where(inside_mouth, jnp.where(teeth, TEETH, MOUTH),
                   jnp.where(parts['lips'] < 0.012, LIPS, SKIN))
  eye_c = sdf.eye_centre(identity)
  to_eye = jnp.stack([q[0] - jnp.sign(q[0]) * eye_c[0], q[1] - eye_c[1], q[2] - eye_c[2]])
  cosine = sdf.dot(_normalize(to_eye), gaze_direction(gaze))
  eye = jnp.where(cosine > jnp.cos(0.2), PUPIL, jnp.where(cosine > jnp.cos(0.5), IRIS, EYE_WHITE))
  return jnp.select([which == 0, which == 1, which == 2, which == 3, which == 4],
                    [face, LIDS, eye, BROWS, HAIR], CLOTH).astype(jnp.int32)


def albedo(material: jax.Array, parts: sdf.Parts, body_points: jax.Array, identity: Any
           ) -> jax.Array:
  """(...) materials of surface points -> (3, ...) linear albedo with procedural texture."""
  q = parts['head_points']
  seed = identity.texture_seed.astype(jnp.int32)
  col = lambda c: sdf.expand(c, q)
  grain = noise.fbm(q * 7., seed) - 0.5
  skin = col(to_linear(identity.skin)) * (1. + 2. * identity.skin_noise * grain)
  cheek = sdf.mirror_x(q) - col([0.45, 0.15, -0.72])
  blush = identity.blush * jnp.exp(-sdf.dot(cheek, cheek) / 0.05)
  skin = skin * (1. + blush * col([0.05, -0.25, -0.2]))
  freckle = jnp.clip((noise.value_noise(q * 28., seed + 1) - 0.72) * 6., 0., 1.)
  skin = skin * (1. - 0.35 * identity.freckles * freckle)
  strands = noise.fbm(q * col([30., 3., 30.]), seed + 3)
  stripes = 0.5 + 0.5 * jnp.sin(body_points[1] * identity.cloth_pattern[0] * jnp.pi)
  stripe_w = identity.cloth_pattern[1] * jnp.clip((stripes - 0.4) * 5., 0., 1.)
  cloth = (col(to_linear(identity.cloth)) * (1. - stripe_w)
           + col(to_linear(identity.cloth_alt)) * stripe_w)
  cloth = cloth * (0.9 + 0.2 * noise.value_noise(body_points * 20., seed + 4))
  iris = col(to_linear(identity.iris)) * (0.7 + 0.6 * noise.value_noise(q * 60., seed + 2))
  choices = [
      (SKIN, skin), (LIDS, skin * 0.9),
      (LIPS, col(to_linear(identity.lips)) * (1. + 0.15 * grain)),
      (MOUTH, col([0.12, 0.015, 0.02])), (TEETH, col([0.7, 0.66, 0.55])),
      (EYE_WHITE, col([0.55, 0.5, 0.47])), (IRIS, iris), (PUPIL, col([0.01, 0.01, 0.01])),
      (BROWS, col(to_linear(identity.brow_colour)) * (0.7 + 0.6 * strands)),
      (HAIR, col(to_linear(identity.hair_colour)) * (0.55 + 0.9 * strands))]
  return jnp.select([material == m for m, _ in choices],
                    [jnp.broadcast_to(c, q.shape) for _, c in choices], cloth)


def shade(albedo_lin: jax.Array, material: jax.Array, normal: jax.Array, view: jax.Array,
          light_dir: jax.Array, light_colour: jax.Array, ambient: jax.Array,
          shadow: jax.Array, occlusion: jax.Array) -> jax.Array:
  """Linear radiance (3, ...) of surface points (component-first arrays).

  Args:
    albedo_lin: (3, ...) linear albedo.
    material: (...) material ids.
    normal: (3, ...) outward unit normals (camera frame).
    view: (3, ...) unit vectors toward the camera.
    light_dir: [3] unit vector toward the key light; light_colour, ambient: [3] linear RGB.
    shadow: (...) key-light visibility in [0, 1]; occlusion: (...) ambient visibility in [0, 1].
  """
  col = lambda c: sdf.expand(c, normal)
  n_dot_l = jnp.maximum(sdf.dot(normal, light_dir), 0.)
  fill_dir = _normalize(light_dir * jnp.array([-1., 0.3, 1.]) + jnp.array([0., -0.3, -0.5]))
  fill = 0.25 * jnp.maximum(sdf.dot(normal, fill_dir), 0.)
  sky = (0.65 - 0.35 * normal[1]) * occlusion  # brighter on up-facing (-y) surfaces
  half = _normalize(col(light_dir) + view)
  spec = (jnp.asarray(_SPECULAR)[material]
          * jnp.power(jnp.maximum(sdf.dot(normal, half), 0.), jnp.asarray(_SHININESS)[material])
          * shadow * (n_dot_l > 0))
  diffuse = (n_dot_l * shadow + fill) * col(light_colour) + sky * col(ambient)
  return albedo_lin * diffuse + spec * col(light_colour)


def background(size: int, top: jax.Array, bottom: jax.Array, seed: jax.Array) -> jax.Array:
  """(3, S * S) linear background: a vertical gradient with soft blotches, pixels row-major."""
  v = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size
  vv, uu = [a.reshape(-1) for a in jnp.meshgrid(v, v, indexing='ij')]
  grad = to_linear(top)[:, None] * (1. - vv) + to_linear(bottom)[:, None] * vv
  blotch = noise.fbm(jnp.stack([uu * 3., vv * 3., jnp.zeros_like(uu)]),
                     seed.astype(jnp.int32), octaves=2)
  return grad * (0.8 + 0.4 * blotch)
