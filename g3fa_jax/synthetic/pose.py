"""Head rotations and head-motion curves over a clip.

Angles in degrees, in the camera frame (x right, y down, z away from the camera):
  yaw > 0    the nose turns toward the image's right (+x);
  pitch > 0  the nose turns up (toward the top of the image, -y);
  roll > 0   the top of the head tilts toward the image's right (clockwise on screen).
`rotation(yaw, pitch, roll) = R_yaw @ R_pitch @ R_roll` maps head-frame directions to camera-frame
directions.
"""

from __future__ import annotations

import numpy as np

MAX_YAW, MAX_PITCH, MAX_ROLL = 60.0, 25.0, 15.0


def rotation(yaw: float | np.ndarray, pitch: float | np.ndarray, roll: float | np.ndarray
             ) -> np.ndarray:
  """Angles (degrees), scalars or (T,) -> rotation matrices (3, 3) or (T, 3, 3), float32."""
  y, p, r = (np.radians(np.asarray(a, np.float64)) for a in (yaw, pitch, roll))
  zero, one = np.zeros_like(y), np.ones_like(y)

  def mat(rows):
    return np.stack([np.stack(row, -1) for row in rows], -2)

  r_yaw = mat([[np.cos(y), zero, -np.sin(y)], [zero, one, zero], [np.sin(y), zero, np.cos(y)]])
  r_pitch = mat([[one, zero, zero], [zero, np.cos(p), np.sin(p)], [zero, -np.sin(p), np.cos(p)]])
  r_roll = mat([[np.cos(r), -np.sin(r), zero], [np.sin(r), np.cos(r), zero], [zero, zero, one]])
  return (r_yaw @ r_pitch @ r_roll).astype(np.float32)


def smooth_wiggle(rng: np.random.Generator, times: np.ndarray, amplitude: float,
                  frequency: tuple[float, float] = (0.2, 1.2), terms: int = 3) -> np.ndarray:
  """(T,) smooth random curve: a sum of sinusoids of random frequency (Hz) and phase."""
  out = np.zeros_like(times)
  for _ in range(terms):
    out += rng.uniform(0.3, 1.) * np.sin(2 * np.pi * rng.uniform(*frequency) * times
                                         + rng.uniform(0, 2 * np.pi))
  return amplitude * out / terms


def smoothstep(x: np.ndarray) -> np.ndarray:
  x = np.clip(x, 0., 1.)
  return x * x * (3. - 2. * x)


def head_motion(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
  """(T, 3) yaw, pitch, roll (degrees) of a clip at `times` (seconds, increasing).

  About 40% of clips make one strong turn between two yaws up to +-MAX_YAW apart in sign; the
  others look around a random base yaw. All add small pitch/roll/yaw wobble.
  """
  duration = max(float(times[-1] - times[0]), 1e-3)
  rel = (times - times[0]) / duration
  if rng.uniform() < 0.4:
    start = rng.uniform(-MAX_YAW, MAX_YAW)
    end = -np.sign(start) * rng.uniform(20., MAX_YAW) if rng.uniform() < 0.7 else rng.uniform(
        -MAX_YAW, MAX_YAW)
    t0 = rng.uniform(0., 0.4)
    t1 = rng.uniform(t0 + 0.3, 1.)
    yaw = start + (end - start) * smoothstep((rel - t0) / (t1 - t0))
    yaw += smooth_wiggle(rng, times, 3.)
  else:
    yaw = rng.uniform(-40., 40.) + smooth_wiggle(rng, times, rng.uniform(4., 20.))
  pitch = rng.uniform(-10., 10.) + smooth_wiggle(rng, times, rng.uniform(2., 10.))
  roll = rng.uniform(-8., 8.) + smooth_wiggle(rng, times, rng.uniform(1., 6.))
  return np.stack([np.clip(yaw, -MAX_YAW, MAX_YAW), np.clip(pitch, -MAX_PITCH, MAX_PITCH),
                   np.clip(roll, -MAX_ROLL, MAX_ROLL)], -1).astype(np.float32)


def head_translation(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
  """(T, 3) small head-unit offsets of the pivot (sway, bob, lean); the lean stays small enough
  to keep every visible depth inside Unsup3D's range [0.9, 1.1] (see `camera`)."""
  base = np.array([rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.15), rng.uniform(-0.35, 0.4)])
  wobble = np.stack([smooth_wiggle(rng, times, a) for a in (0.15, 0.08, 0.15)], -1)
  return (base + wobble).astype(np.float32)
