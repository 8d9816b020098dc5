"""A clip: one identity plus timelines of head motion, expression, lighting and a background.

Everything is drawn from `numpy.random.default_rng([seed, kind, index])`, so a clip is a pure
function of (dataset seed, clip index, identity index, frame count, fps).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.struct
import numpy as np

from g3fa_jax.synthetic import identities as identities_lib
from g3fa_jax.synthetic import pose as pose_lib

FPS = 25.0


@flax.struct.dataclass
class Frames:
  """Per-frame scene state, every field with a leading frame axis T (float32).

  Attributes:
    rotation: [T, 3, 3] head pose, head-frame -> camera-frame directions (`pose.rotation`).
    translation: [T, 3] pivot offset in head units (see `camera.pivot`).
    mouth: [T] mouth opening in [0, 1].
    blink: [T] eyelid closure in [0, 1].
    brow: [T] eyebrow raise in [0, 1].
    gaze: [T, 2] eye yaw and pitch (degrees, signs as head yaw and pitch).
    light_dir: [T, 3] unit vector toward the key light (camera frame).
    light_colour: [T, 3] key light colour times intensity (linear RGB).
    ambient: [T, 3] ambient light (linear RGB).
    bg_top, bg_bottom: [T, 3] background gradient colours (sRGB).
    bg_seed: [T] background noise seed.
  """
  rotation: np.ndarray
  translation: np.ndarray
  mouth: np.ndarray
  blink: np.ndarray
  brow: np.ndarray
  gaze: np.ndarray
  light_dir: np.ndarray
  light_colour: np.ndarray
  ambient: np.ndarray
  bg_top: np.ndarray
  bg_bottom: np.ndarray
  bg_seed: np.ndarray


@dataclasses.dataclass(frozen=True)
class Clip:
  """identity: who; frames: what happens (T frames); angles: (T, 3) yaw/pitch/roll in degrees."""
  identity: identities_lib.Identity
  frames: Frames
  angles: np.ndarray
  identity_index: int
  clip_index: int

  @property
  def num_frames(self) -> int:
    return int(self.angles.shape[0])


def speech(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
  """(T,) mouth opening in [0, 1]: syllable-rate pulses under a slow loudness envelope."""
  if rng.uniform() < 0.15:  # a listener: mouth nearly closed
    return (0.08 * rng.uniform() * np.ones_like(times)).astype(np.float32)
  rate = rng.uniform(2.5, 5.5)
  syllables = np.abs(np.sin(np.pi * rate * times + rng.uniform(0, np.pi)))
  envelope = np.clip(0.6 + pose_lib.smooth_wiggle(rng, times, 1.2, (0.3, 1.0)), 0., 1.)
  return np.clip(rng.uniform(0.5, 1.) * syllables ** 1.5 * envelope, 0., 1.).astype(np.float32)


def blinks(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
  """(T,) eyelid closure in [0, 1]: random blinks of 0.12-0.25 s at about one per second."""
  out = np.zeros_like(times)
  start, end = times[0] - 0.3, times[-1] + 0.3
  t = start + rng.exponential(1.)
  while t < end:
    duration = rng.uniform(0.12, 0.25)
    x = np.clip(np.abs(times - t) / (duration / 2), 0., 1.)
    out = np.maximum(out, np.cos(x * np.pi / 2) ** 2)
    t += duration + rng.exponential(1.)
  return out.astype(np.float32)


def lighting(rng: np.random.Generator, times: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Key-light direction (T, 3), key colour (T, 3) and ambient (T, 3), drifting over the clip."""
  duration = max(float(times[-1] - times[0]), 1e-3)
  rel = (times - times[0]) / duration
  azimuth = np.radians(rng.uniform(-70., 70.) + rng.uniform(-40., 40.) * rel)
  elevation = np.radians(rng.uniform(5., 55.) + pose_lib.smooth_wiggle(rng, times, 8.))
  # Toward the light: x right, y down (so up is -y), z away from the camera (lit faces: -z).
  direction = np.stack([np.sin(azimuth) * np.cos(elevation), -np.sin(elevation),
                        -np.cos(azimuth) * np.cos(elevation)], -1)
  warmth = rng.uniform(-1., 1.)
  tint = np.array([1. + 0.12 * warmth, 1., 1. - 0.15 * warmth])
  intensity = rng.uniform(0.8, 1.3) * (1. + pose_lib.smooth_wiggle(rng, times, 0.15))
  key = intensity[:, None] * tint
  ambient = rng.uniform(0.12, 0.35) * (np.array([0.95, 1., 1.08]) * np.ones_like(key))
  return direction.astype(np.float32), key.astype(np.float32), ambient.astype(np.float32)


def make_clip(seed: int, clip_index: int, identity_index: int, num_frames: int,
              fps: float = FPS) -> Clip:
  """The clip `clip_index` of dataset `seed`, showing identity `identity_index`."""
  identity = identities_lib.make_identity(seed, identity_index)
  rng = np.random.default_rng([seed, 1, clip_index])
  times = np.arange(num_frames, dtype=np.float64) / fps
  angles = pose_lib.head_motion(rng, times)
  translation = pose_lib.head_translation(rng, times)
  mouth = speech(rng, times)
  blink = blinks(rng, times)
  brow = np.clip(rng.uniform(0., 0.4) + pose_lib.smooth_wiggle(rng, times, 0.6), 0., 1.)
  # Eyes look partly back toward the camera when the head turns.
  gaze = (-rng.uniform(0., 0.6) * angles[:, :2]
          + np.stack([pose_lib.smooth_wiggle(rng, times, 8.) for _ in range(2)], -1))
  light_dir, light_colour, ambient = lighting(rng, times)
  bg = rng.uniform(0.05, 0.95, (2, 3)) * rng.uniform(0.5, 1.)
  ones = np.ones((num_frames, 1), np.float32)
  frames = Frames(
      rotation=pose_lib.rotation(angles[:, 0], angles[:, 1], angles[:, 2]),
      translation=translation, mouth=mouth, blink=blink, brow=brow.astype(np.float32),
      gaze=np.clip(gaze, -25., 25.).astype(np.float32), light_dir=light_dir,
      light_colour=light_colour, ambient=ambient,
      bg_top=(ones * bg[0]).astype(np.float32), bg_bottom=(ones * bg[1]).astype(np.float32),
      bg_seed=(ones[:, 0] * rng.integers(0, 1 << 20)).astype(np.float32))
  return Clip(identity=identity, frames=frames, angles=angles, identity_index=identity_index,
              clip_index=clip_index)


def posed_frames(identity_frames: Frames, angles: np.ndarray) -> Frames:
  """`identity_frames` (T frames) with the head rotations replaced by (T, 3) yaw/pitch/roll."""
  angles = np.asarray(angles, np.float32)
  return identity_frames.replace(rotation=pose_lib.rotation(angles[:, 0], angles[:, 1],
                                                            angles[:, 2]))


def clip_of_record(record: dict[str, Any], needed_for: str) -> Clip:
  """The clip a synthetic record was rendered from, rebuilt from `record['synthetic']` (seed,
  clip and identity index), its frame count and fps; a ValueError naming the record and
  `needed_for` (what wanted it) when the record is not a synthetic clip."""
  params = record.get('synthetic')
  if not params:
    raise ValueError(f'record {record.get("key")!r} is not a synthetic clip (no "synthetic" '
                     f'field): {needed_for} needs the renderer\'s parameters')
  return make_clip(int(params['seed']), int(params['clip_index']), int(params['identity_index']),
                   int(record['num_frames']), float(record['fps']))
