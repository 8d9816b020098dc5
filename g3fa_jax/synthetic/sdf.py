"""Signed distance field of a talking head: skull, face, nose, eyes with eyelids, mouth, ears, hair,
neck and shoulders, built from ellipsoids, capsules and smooth unions.

Head frame (head units, the cranium's half-width is about 0.9): x to the image's right when the
head faces the camera, y down, z away from the camera; the face looks toward -z and the origin is
the head's pivot (between the ears). The shoulders live in the body frame: the head frame before
the head's rotation. Distances are Lipschitz-bounded approximations (ellipsoids), good for sphere
tracing; the surface itself (the zero set) is exact.

Points are component-first arrays (3, ...): x, y, z are separate planes, which keeps every
operation elementwise (fast, vectorised code on CPUs); centres and radii are [3] arrays.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Parts = dict[str, jax.Array]


def smin(a: jax.Array, b: jax.Array, k: float) -> jax.Array:
  """Smooth minimum (polynomial, blend width k): a smooth union of two distance fields."""
  h = jnp.maximum(k - jnp.abs(a - b), 0.) / k
  return jnp.minimum(a, b) - h * h * k * 0.25


def smax(a: jax.Array, b: jax.Array, k: float) -> jax.Array:
  """Smooth maximum: a smooth intersection (or, with -b, subtraction)."""
  return -smin(-a, -b, k)


def expand(v: Any, p: jax.Array) -> jax.Array:
  """A [3] vector shaped to broadcast against (3, ...) points."""
  return jnp.reshape(jnp.asarray(v, jnp.float32), (3,) + (1,) * (p.ndim - 1))


def length(v: jax.Array) -> jax.Array:
  """(3, ...) -> (...) Euclidean length."""
  return jnp.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


def dot(a: jax.Array, b: jax.Array) -> jax.Array:
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def ellipsoid(p: jax.Array, centre: Any, radii: Any) -> jax.Array:
  """Approximate distance of (3, ...) points to an axis-aligned ellipsoid (exact zero set)."""
  q = p - expand(centre, p)
  r = expand(radii, p)
  k0 = length(q / r)
  k1 = length(q / (r * r))
  return k0 * (k0 - 1.) / jnp.maximum(k1, 1e-6)


def sphere(p: jax.Array, centre: Any, radius: Any) -> jax.Array:
  return length(p - expand(centre, p)) - radius


def cone_capsule(p: jax.Array, a: Any, b: Any, ra: Any, rb: Any) -> jax.Array:
  """Capsule from a to b whose radius goes linearly from ra to rb (approximate distance)."""
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  pa, ba = p - expand(a, p), expand(b - a, p)
  h = jnp.clip(dot(pa, ba) / jnp.sum((b - a) ** 2), 0., 1.)
  return length(pa - h * ba) - (ra + (rb - ra) * h)


def mirror_x(p: jax.Array) -> jax.Array:
  """Folds the head's left half onto its right: one primitive gives a symmetric pair."""
  return jnp.stack([jnp.abs(p[0]), p[1], p[2]])


def _vec(*components) -> jax.Array:
  return jnp.stack([jnp.asarray(c, jnp.float32) for c in components])


def eye_centre(identity: Any) -> jax.Array:
  """[3] centre of the right-hand eyeball (x > 0) in the head frame; the other mirrors x."""
  return _vec(identity.eyes[0], identity.eyes[1], -0.71)


def nose_tip(identity: Any) -> jax.Array:
  """[3] the front end of the nose's axis in the head frame; the nose's surface lies
  0.11 * nose width factor (identity.nose[1]) further toward -z."""
  return _vec(0., 0.22, -0.95 - identity.nose[0])


def mouth_opening(mouth_open: Any) -> tuple[Any, Any]:
  """(gap between the lips, drop of the jaw and lower lip), head units, for an opening in
  [0, 1]."""
  return 0.16 * mouth_open, 0.1 * mouth_open


def lip_and_chin_heights(mouth_y: Any, mouth_open: Any) -> tuple[Any, Any, Any]:
  """y (head units, down) of the upper lip's, the lower lip's and the chin's centres for the
  identity's mouth height `mouth_y` and an opening in [0, 1]: the lips part by the gap and the
  lower lip and chin drop with the jaw (`mouth_opening`)."""
  gap, drop = mouth_opening(mouth_open)
  return mouth_y - 0.045 - 0.5 * gap, mouth_y + 0.05 + 0.5 * gap + drop, 0.95 + drop


def mouth_geometry(identity: Any, mouth_open: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Centre [3] and half-axes [3] of the mouth cavity for an opening in [0, 1]."""
  width, y = identity.mouth[0], identity.mouth[1]
  return (_vec(0., y + 0.01 + 0.04 * mouth_open, -0.9),
          _vec(0.2 * width, 0.012 + 0.1 * mouth_open, 0.22))


def head_parts(p: jax.Array, identity: Any, mouth_open: jax.Array, blink: jax.Array,
               brow_raise: jax.Array) -> Parts:
  """Distances (head units) of (3, ...) head-frame points to the head's parts.

  Returns a dict of (...) arrays: 'face' (skin incl. lips, mouth cut out), 'lips', 'cavity'
  (the mouth's inside, negative inside it), 'eyeballs', 'lids', 'brows', 'hair' and 'head'
  (the union of them all).
  """
  ident = identity
  ps = mirror_x(p)
  _, drop = mouth_opening(mouth_open)  # the jaw opens with the mouth
  cran_c = _vec(0., -0.3, 0.12)
  blob = smin(ellipsoid(p, cran_c, ident.cranium),
              ellipsoid(p, _vec(0., 0.3 + 0.6 * drop, -0.28), ident.jaw), 0.4)
  upper_lip_y, lower_lip_y, chin_y = lip_and_chin_heights(ident.mouth[1], mouth_open)
  blob = smin(blob, ellipsoid(p, _vec(0., chin_y, -0.62),
                              ident.chin * _vec(0.3, 0.2, 0.28)), 0.25)
  blob = smin(blob, ellipsoid(ps, _vec(0.42, 0.2, -0.62),
                              (0.8 + 0.4 * ident.cheeks) * _vec(0.3, 0.26, 0.3)), 0.2)
  blob = smin(blob, ellipsoid(p, _vec(0., -0.42, -0.85), _vec(0.62, 0.15, 0.18)), 0.15)
  eye_c = eye_centre(ident)
  eye_r = ident.eyes[2]
  blob = smax(blob, -sphere(ps, eye_c + _vec(0., 0., -0.1), eye_r + 0.04), 0.1)
  nose_w = ident.nose[1]
  nose = cone_capsule(p, _vec(0., eye_c[1] + 0.02 + ident.nose[2], -0.9), nose_tip(ident),
                      0.06 * nose_w, 0.11 * nose_w)
  nose = smin(nose, ellipsoid(p, _vec(0., 0.24, -0.98), _vec(0.19 * nose_w, 0.09, 0.12)), 0.06)
  blob = smin(blob, nose, 0.08)
  ear = ellipsoid(ps, _vec(ident.cranium[0] + 0.01, 0.02, 0.12),
                  ident.ears * _vec(0.09, 0.28, 0.17))
  blob = smin(blob, ear, 0.06)
  blob = smin(blob, cone_capsule(p, _vec(0., 0.6, 0.25), _vec(0., 3.0, 0.35), ident.neck,
                                 ident.neck * 1.15), 0.25)

  width, lip = ident.mouth[0], ident.mouth[2]
  lips = jnp.minimum(
      ellipsoid(p, _vec(0., upper_lip_y, -0.93), _vec(0.25 * width, lip, 0.1)),
      ellipsoid(p, _vec(0., lower_lip_y, -0.92),
                _vec(0.23 * width, 1.1 * lip, 0.1)))
  cav_c, cav_r = mouth_geometry(ident, mouth_open)
  cavity = ellipsoid(p, cav_c, cav_r)
  face = smax(smin(blob, lips, 0.04), -cavity, 0.02)

  eyeballs = sphere(ps, eye_c, eye_r)
  lid_cut = eye_c[1] - 0.4 * eye_r + blink * 1.55 * eye_r
  upper = jnp.maximum(sphere(ps, eye_c, eye_r + 0.018), p[1] - lid_cut)
  lower = jnp.maximum(sphere(ps, eye_c, eye_r + 0.012), eye_c[1] + 0.6 * eye_r - p[1])
  lids = jnp.minimum(upper, lower)
  brows = ellipsoid(ps, _vec(eye_c[0] + 0.02, eye_c[1] - 0.25 - 0.07 * brow_raise, -0.97),
                    _vec(0.17, 0.035 * ident.brows, 0.06))

  volume, front, back, length = ident.hair[0], ident.hair[1], ident.hair[2], ident.hair[3]
  shell = ellipsoid(p, cran_c + _vec(0., -0.03 - 0.4 * volume, 0.04 + 0.2 * volume),
                    ident.cranium + volume * _vec(0.8, 1., 1.))
  slope = (back - front) / 2.
  cut = (p[1] - (front + back) / 2. - slope * p[2]) / jnp.sqrt(1. + slope * slope)
  # Cheap bumps (no noise lookups inside the march): locks and waves.
  bumps = 0.02 * jnp.sin(17. * p[0]) * jnp.sin(13. * p[1] + 5. * p[2]) * jnp.sin(11. * p[2])
  hair = smax(shell + bumps * jnp.minimum(volume * 8., 1.), cut, 0.05)
  long_hair = ellipsoid(p, _vec(0., 0.45, 0.45),
                        _vec(0.88 + volume, 0.35 + 0.9 * length, 0.3 + 0.35 * length))
  # Only the back half; no long hair at all for length 0 (ellipsoid distances are only good
  # bounds outside, so the blob is switched off rather than shrunk by an offset).
  long_hair = jnp.where(length > 0., jnp.maximum(long_hair, -0.05 - p[2]), 10.)
  hair = smin(hair, long_hair, 0.1)

  head = jnp.minimum(jnp.minimum(face, eyeballs), jnp.minimum(smin(lids, face, 0.01), hair))
  head = jnp.minimum(head, brows)
  return {'face': face, 'lips': lips, 'cavity': cavity, 'eyeballs': eyeballs, 'lids': lids,
          'brows': brows, 'hair': hair, 'head': head}


def torso(p_body: jax.Array) -> jax.Array:
  """Distance (head units) of body-frame points to the shoulders."""
  return ellipsoid(p_body, _vec(0., 2.6, 0.45), _vec(2.2, 1.05, 0.9))


def scene_parts(p_body: jax.Array, rotation: jax.Array, identity: Any, mouth_open: jax.Array,
                blink: jax.Array, brow_raise: jax.Array) -> tuple[jax.Array, Parts]:
  """Scene distance (head units) of (3, ...) body-frame points and the head's parts.

  `rotation` [3, 3] maps head-frame directions to body-frame ones (the head's pose). Returns
  (distance, parts) with parts as in `head_parts` (in head-frame coordinates) plus 'torso' and
  'head_points' (the points in the head frame).
  """
  p_head = jnp.stack([dot(rotation[:, i], p_body) for i in range(3)])  # rotation^T p
  parts = head_parts(p_head, identity, mouth_open, blink, brow_raise)
  parts['torso'] = torso(p_body)
  parts['head_points'] = p_head
  return smin(parts['head'], parts['torso'], 0.15), parts
