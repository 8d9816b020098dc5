"""Random identities: the shape, colour and texture parameters of one synthetic person.

Lengths are in head units (the cranium's half-width is about 0.9); colours are sRGB in [0, 1].
Every field is a float32 array (a JAX pytree leaf), so one compiled renderer serves every
identity.
"""

from __future__ import annotations

import flax.struct
import numpy as np

# sRGB skin tones from very light to very dark; an identity interpolates between neighbours.
SKIN_TONES = np.array([
    [250, 222, 200], [238, 196, 170], [222, 170, 135], [196, 140, 100], [160, 105, 70],
    [120, 78, 52], [85, 55, 40]], np.float32) / 255.
HAIR_COLOURS = np.array([
    [22, 18, 16], [50, 35, 25], [95, 62, 38], [150, 110, 65], [205, 170, 115], [140, 60, 30],
    [165, 160, 155], [235, 230, 220]], np.float32) / 255.
HAIR_WEIGHTS = np.array([0.25, 0.22, 0.18, 0.1, 0.09, 0.06, 0.07, 0.03])
IRIS_COLOURS = np.array([
    [70, 45, 25], [110, 75, 40], [120, 110, 60], [70, 110, 150], [80, 120, 90],
    [110, 115, 125]], np.float32) / 255.


@flax.struct.dataclass
class Identity:
  """One synthetic person (all float32; shapes in brackets).

  Attributes:
    cranium: [3] half-axes (x, y, z) of the skull ellipsoid.
    jaw: [3] half-axes of the lower-face ellipsoid.
    chin: [] chin size factor.
    cheeks: [] cheek fullness in [0, 1].
    nose: [3] protrusion, width factor, bridge drop.
    eyes: [3] half-spacing x, height y, eyeball radius.
    mouth: [3] width factor, height y, lip thickness.
    ears: [] ear size factor.
    brows: [] eyebrow thickness factor.
    hair: [4] volume (< 0: bald), front hairline y, back hairline y, length of long hair in [0, 1].
    neck: [] neck radius.
    scale: [] overall size factor.
    skin, lips, hair_colour, brow_colour, iris, cloth, cloth_alt: [3] sRGB colours.
    blush, freckles, skin_noise: [] texture strengths.
    cloth_pattern: [2] stripe frequency and stripe contrast in [0, 1] (0: plain cloth).
    texture_seed: [] noise seed (a float holding an integer).
  """
  cranium: np.ndarray
  jaw: np.ndarray
  chin: np.ndarray
  cheeks: np.ndarray
  nose: np.ndarray
  eyes: np.ndarray
  mouth: np.ndarray
  ears: np.ndarray
  brows: np.ndarray
  hair: np.ndarray
  neck: np.ndarray
  scale: np.ndarray
  skin: np.ndarray
  lips: np.ndarray
  hair_colour: np.ndarray
  brow_colour: np.ndarray
  iris: np.ndarray
  cloth: np.ndarray
  cloth_alt: np.ndarray
  blush: np.ndarray
  freckles: np.ndarray
  skin_noise: np.ndarray
  cloth_pattern: np.ndarray
  texture_seed: np.ndarray


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float) -> np.ndarray:
  return np.clip(colour * rng.uniform(1 - amount, 1 + amount, 3), 0., 1.)


def sample_identity(rng: np.random.Generator) -> Identity:
  """A random identity; the same generator state always gives the same person."""
  u = rng.uniform
  tone = u(0, len(SKIN_TONES) - 1)
  lo = int(tone)
  skin = SKIN_TONES[lo] + (tone - lo) * (SKIN_TONES[min(lo + 1, len(SKIN_TONES) - 1)]
                                         - SKIN_TONES[lo])
  skin = _jitter(rng, skin, 0.05)
  lips = np.clip(skin * np.array([0.92, 0.7, 0.7]) * u(0.8, 1.0) + [0.05, 0., 0.01], 0, 1)
  hair_colour = _jitter(rng, HAIR_COLOURS[rng.choice(len(HAIR_COLOURS), p=HAIR_WEIGHTS)], 0.12)
  if u() < 0.04:  # dyed hair
    hair_colour = u(0.1, 0.9, 3)
  brow_colour = np.minimum(hair_colour, 0.45) * u(0.7, 1.0)
  iris = _jitter(rng, IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))], 0.1)
  cloth = u(0.05, 0.9, 3) * u(0.4, 1.0)
  cloth_alt = u(0.05, 0.95, 3)
  bald = u() < 0.12
  volume = u(-0.25, -0.12) if bald else u(0.06, 0.3)
  long_hair = u(0.3, 1.0) if u() < 0.4 else 0.
  f32 = lambda x: np.asarray(x, np.float32)
  return Identity(
      cranium=f32([u(0.82, 0.94), u(0.95, 1.06), u(1.02, 1.12)]),
      jaw=f32([u(0.6, 0.78), u(0.72, 0.84), u(0.68, 0.76)]),
      chin=f32(u(0.8, 1.2)),
      cheeks=f32(u(0., 1.)),
      nose=f32([u(0.22, 0.38), u(0.8, 1.3), u(0., 0.08)]),
      eyes=f32([u(0.29, 0.36), u(-0.16, -0.08), u(0.115, 0.14)]),
      mouth=f32([u(0.8, 1.2), u(0.5, 0.58), u(0.045, 0.08)]),
      ears=f32(u(0.85, 1.15)),
      brows=f32(u(0.7, 1.4)),
      hair=f32([volume, u(-0.8, -0.42), u(0.0, 0.45), long_hair]),
      neck=f32(u(0.48, 0.6)),
      scale=f32(u(0.92, 1.06)),
      skin=f32(skin), lips=f32(lips), hair_colour=f32(hair_colour),
      brow_colour=f32(brow_colour), iris=f32(iris), cloth=f32(cloth), cloth_alt=f32(cloth_alt),
      blush=f32(u(0., 0.6)),
      freckles=f32(u(0., 0.5) if u() < 0.25 else 0.),
      skin_noise=f32(u(0.03, 0.1)),
      cloth_pattern=f32([u(3., 12.), u(0.3, 1.) if u() < 0.4 else 0.]),
      texture_seed=f32(rng.integers(0, 1 << 20)))


def make_identity(seed: int, identity_index: int) -> Identity:
  """Identity `identity_index` of dataset seed `seed` (a pure function of both)."""
  return sample_identity(np.random.default_rng([seed, 0, identity_index]))
