"""Facial landmarks of the synthetic heads: points on the face's surface that move with it.

Unsupervised keypoints settle on the head's outline and shading, which hardly move when a head
turns (docs/synthetic_training.md); landmarks on the eyes, nose, mouth, chin, brows and cheeks
move with the surface, and the lips' with the mouth's opening. They serve as an optional anchor
for the keypoint detector of the synthetic job (`demo.motion_warmup_landmarks`), the role a
landmark detector plays for real faces. Positions come from the signed distance field's own
parameters (`g3fa_jax.synthetic.sdf`): each landmark lies on or within a few hundredths of a head
unit of its part's surface, whether or not it is hidden from the camera.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from g3fa_jax.synthetic import camera
from g3fa_jax.synthetic import clips as clips_lib
from g3fa_jax.synthetic import flow
from g3fa_jax.synthetic import sdf

NAMES = ('right_eye', 'left_eye', 'nose_tip', 'nose_bridge', 'upper_lip', 'lower_lip',
         'right_mouth_corner', 'left_mouth_corner', 'chin', 'right_brow', 'left_brow',
         'right_cheek', 'left_cheek', 'forehead', 'jaw')

# Each landmark's mirror image (right <-> left) under a horizontal flip of the frame.
MIRROR = tuple(NAMES.index(n.replace('right', '@').replace('left', 'right').replace('@', 'left'))
               for n in NAMES)


def head_frame(identity: Any, mouth_open: float, brow_raise: float) -> np.ndarray:
  """(L, 3) the landmarks in the head frame (head units; x to the image's right when the head
  faces the camera, y down, z away from the camera), in the order of `NAMES`."""
  eyes, nose, mouth = (np.asarray(v, np.float64) for v in (identity.eyes, identity.nose,
                                                           identity.mouth))
  chin, cheeks = float(identity.chin), float(identity.cheeks)
  ex, ey, eye_radius = eyes
  eye_z = float(sdf.eye_centre(identity)[2])
  nose_x, nose_y, nose_z = np.asarray(sdf.nose_tip(identity), np.float64)
  width, mouth_y, lip = mouth
  _, drop = sdf.mouth_opening(mouth_open)
  upper_lip_y, lower_lip_y, chin_y = sdf.lip_and_chin_heights(mouth_y, mouth_open)
  brow_y = ey - 0.25 - 0.07 * brow_raise
  cheek_z = -0.62 - 0.3 * (0.8 + 0.4 * cheeks)
  points = [
      (ex, ey, eye_z - eye_radius), (-ex, ey, eye_z - eye_radius),
      (nose_x, nose_y, nose_z - 0.11 * nose[1]),  # the nose's surface in front of its tip
      (0., ey + 0.02 + nose[2], -0.9 - 0.06 * nose[1]),
      (0., upper_lip_y - lip, -1.03),
      (0., lower_lip_y + 1.1 * lip, -1.02),
      (0.25 * width, mouth_y, -0.93), (-0.25 * width, mouth_y, -0.93),
      (0., chin_y, -0.62 - 0.28 * chin),
      (ex + 0.02, brow_y, -1.03), (-(ex + 0.02), brow_y, -1.03),
      (0.42, 0.2, cheek_z), (-0.42, 0.2, cheek_z),
      (0., -0.42, -1.03),
      (0., 0.3 + 0.6 * drop + 0.35, -0.75),
  ]
  return np.asarray(points, np.float64)


def camera_points(clip: clips_lib.Clip) -> np.ndarray:
  """(T, L, 3) float64 camera-frame positions (world units; z is the depth) of the landmarks of
  every frame of a clip, placed as `g3fa_jax.synthetic.render` places the head."""
  poses = flow.poses_of(clip)
  frames = clip.frames
  return np.stack([
      poses.origin[t] + poses.scale * head_frame(clip.identity, float(frames.mouth[t]),
                                                 float(frames.brow[t])) @ poses.rotation[t].T
      for t in range(clip.num_frames)])


def clip_landmarks(clip: clips_lib.Clip, size: int) -> np.ndarray:
  """(T, L, 2) float32 landmark positions of every frame of a clip, in the keypoints' [-1, 1]
  coordinates (x, y; -1 and 1 the centres of the first and last pixels, as
  `g3fa_jax.synthetic.flow.backward_grid`) of an S x S frame."""
  return project_normalised(camera_points(clip), size).astype(np.float32)


def project_normalised(camera_points: np.ndarray, size: int) -> np.ndarray:
  """(..., 3) camera-frame points -> (..., 2) positions in [-1, 1] of an S x S frame."""
  return camera.project(camera_points, size) / (size - 1) * 2. - 1.


def record_landmarks(record: dict[str, Any]) -> np.ndarray:
  """(T, L, 2) the landmarks of a synthetic clip's record (rebuilt from `record['synthetic']`)."""
  clip = clips_lib.clip_of_record(record, 'landmarks')
  return clip_landmarks(clip, int(record['frame_size'][0]))


def mirrored(points: np.ndarray) -> np.ndarray:
  """(..., L, 2) landmarks of a frame -> those of the frame flipped left to right."""
  points = np.asarray(points)[..., MIRROR, :]
  return points * np.asarray([-1., 1.], points.dtype)


def pair_landmarks(record: dict[str, Any], frames: Sequence[int], mirror: bool) -> np.ndarray:
  """(len(frames), L, 2) the landmarks of those frames of a synthetic clip's record, mirrored
  (`mirrored`) when the frames are flipped left to right; a ValueError naming the record if it
  is not a synthetic clip (the pair sampler's `landmarks_of`)."""
  points = record_landmarks(record)[list(frames)]
  return mirrored(points) if mirror else points
