"""Procedural noise for textures: integer-hash value noise and its fractal sum, in JAX.

Integer hashing (wrapping uint32 arithmetic) rather than the usual `fract(sin(x) * big)` trick,
so that textures are bit-identical on every backend.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _hash(cx: jax.Array, cy: jax.Array, cz: jax.Array, seed: jax.Array) -> jax.Array:
  """int32 lattice cell coordinates (...) and a scalar seed -> (...) float32 in [0, 1)."""
  c = [a.astype(jnp.uint32) for a in (cx, cy, cz)]
  h = (c[0] * jnp.uint32(0x8DA6B343) ^ c[1] * jnp.uint32(0xD8163841)
       ^ c[2] * jnp.uint32(0xCB1AB31F) ^ jnp.asarray(seed).astype(jnp.uint32))
  for shift, mult in ((16, 0x7FEB352D), (15, 0x846CA68B), (16, 1)):  # lowbias32 finaliser
    h = (h ^ (h >> jnp.uint32(shift))) * jnp.uint32(mult)
  return (h >> jnp.uint32(8)).astype(jnp.float32) / jnp.float32(1 << 24)


def value_noise(p: jax.Array, seed: jax.Array) -> jax.Array:
  """Smooth value noise of (3, ...) component-first points (lattice spacing 1) -> (...) in [0, 1]."""
  cell = jnp.floor(p)
  f = p - cell
  w = f * f * (3. - 2. * f)
  cell = cell.astype(jnp.int32)
  out = 0.
  for corner in range(8):
    offset = ((corner >> 2) & 1, (corner >> 1) & 1, corner & 1)
    weight = 1.
    for axis in range(3):
      weight = weight * (w[axis] if offset[axis] else 1. - w[axis])
    out = out + weight * _hash(cell[0] + offset[0], cell[1] + offset[1], cell[2] + offset[2],
                               seed)
  return out


def fbm(p: jax.Array, seed: jax.Array, octaves: int = 3) -> jax.Array:
  """Fractal sum of value-noise octaves (frequency x2, amplitude /2) of (3, ...) points -> (...)
  in [0, 1]."""
  total, amplitude, norm = 0., 1., 0.
  for octave in range(octaves):
    total = total + amplitude * value_noise(p * (2. ** octave), seed + 7919 * octave)
    norm += amplitude
    amplitude *= 0.5
  return total / norm
