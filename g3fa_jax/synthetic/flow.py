"""Ground-truth motion between two frames of a synthetic clip, from its depth and head poses.

For every point of a regular grid over the DRIVING frame this gives where the same surface point
is in the SOURCE frame: the backward sampling grid that G3FA's dense motion network predicts
(`DenseMotionNetwork`'s 'deformation': (x, y) in [-1, 1], -1 and 1 the centres of the first and
last pixels, i.e. `make_coordinate_grid` with align_corners=True). How: the driving depth map
puts the grid point in the camera frame; the driving pose takes it to the head frame (or, for the
shoulders, which do not turn with the head, to the body frame); the source pose brings it back and
the camera projects it. Background points do not move. Points that the source frame does not show
(the far side of a turned head) get the position of the hidden point all the same: the grid says
where to look, not whether it is visible. The mouth's opening, which the rigid motion leaves as
the source has it, can be added (`jaw_drop`, `backward_grid(with_mouth=True)`; approximate).

The head's pose per frame is rebuilt from the clip's generating parameters kept in its record
(`record['synthetic']`: seed, identity and clip index; `clips.make_clip` is deterministic), so it
works on any clip written by `writer.py`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from g3fa_jax.synthetic import camera
from g3fa_jax.synthetic import clips as clips_lib
from g3fa_jax.synthetic import sdf

# Body-frame height (head units, y down) below which a point belongs to the shoulders: the torso
# ellipsoid of `sdf.torso` starts at 1.55, the neck (which turns with the head) ends at 3.0 but is
# hidden by the shoulders below ~1.6.
SHOULDERS_Y = 1.6
# Depths within this of the background plane are background.
BACKGROUND_MARGIN = 0.01


@dataclasses.dataclass(frozen=True)
class ClipPoses:
  """A clip's camera geometry per frame.

  Attributes:
    rotation: (T, 3, 3) head-frame directions -> body-frame directions.
    origin: (T, 3) camera-frame position of the head's pivot (body-frame origin).
    scale: world units per head unit.
    mouth: (T,) mouth opening in [0, 1] (None: the mouth's motion is unknown).
    mouth_shape: [3] the identity's mouth (width factor, height y, lip thickness; see
      `identities.Identity.mouth`), or None.
  """
  rotation: np.ndarray
  origin: np.ndarray
  scale: float
  mouth: np.ndarray | None = None
  mouth_shape: np.ndarray | None = None


def clip_poses(record: dict[str, Any]) -> ClipPoses:
  """The poses of a synthetic clip's frames, rebuilt from `record['synthetic']`."""
  return poses_of(clips_lib.clip_of_record(record, 'ground-truth motion'))


def poses_of(clip: clips_lib.Clip) -> ClipPoses:
  """The poses of a clip's frames (what `render` places them by)."""
  identity_scale = float(clip.identity.scale)
  origin = (np.array([0., camera.PIVOT_Y, camera.HEAD_DISTANCE])
            + camera.HEAD_SCALE * identity_scale * np.asarray(clip.frames.translation, np.float64))
  return ClipPoses(rotation=np.asarray(clip.frames.rotation, np.float64), origin=origin,
                   scale=camera.HEAD_SCALE * identity_scale,
                   mouth=np.asarray(clip.frames.mouth, np.float64),
                   mouth_shape=np.asarray(clip.identity.mouth, np.float64))


def jaw_drop(head_points: np.ndarray, mouth_shape: np.ndarray, driving_opening: float,
             source_opening: float) -> np.ndarray:
  """(..., 3) head-frame displacement (head units, y down) of each DRIVING head-frame point since
  the source frame, from the mouth's opening alone: the upper lip rises by half the lips' gap,
  the lower lip drops by the other half and the jaw's drop, the chin by the jaw's drop
  (`sdf.lip_and_chin_heights`, where `sdf.head_parts` puts them), interpolated linearly in y
  between them (the parted lips' cavity included) and fading to zero above the upper lip, below
  the chin and away from the face's middle. An approximation of the signed distance field's
  non-rigid motion, exact at the lips' and chin's centre lines; zero where the opening does not
  change."""
  width, mouth_y, _ = (float(v) for v in mouth_shape)
  # Knots in y (the driving geometry) and the vertical displacement at each.
  driving = sdf.lip_and_chin_heights(mouth_y, driving_opening)
  source = sdf.lip_and_chin_heights(mouth_y, source_opening)
  knots = (mouth_y - 0.2, *driving, driving[-1] + 0.2)
  values = (0., *(d - s for d, s in zip(driving, source)), 0.)
  dy = np.interp(head_points[..., 1], knots, values)
  # Full across the mouth and jaw's front, none on the cheeks' sides and the back of the head.
  across = np.clip((0.45 + 0.3 * width - np.abs(head_points[..., 0])) / 0.3, 0., 1.)
  front = np.clip((-head_points[..., 2] - 0.2) / 0.3, 0., 1.)
  displacement = np.zeros_like(head_points)
  displacement[..., 1] = dy * across * front
  return displacement


def grid_coordinates(grid_size: int) -> np.ndarray:
  """(g, g, 2) the (x, y) in [-1, 1] of a g x g grid, align_corners=True (as
  `g3fa_jax.ops.grid.make_coordinate_grid`)."""
  line = np.linspace(-1., 1., grid_size)
  x, y = np.meshgrid(line, line)
  return np.stack([x, y], -1)


def backward_grid(driving_depth: np.ndarray, poses: ClipPoses, driving: int, source: int,
                  grid_size: int, with_mouth: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Where each point of a grid over the driving frame is in the source frame.

  Args:
    driving_depth: (S, S) depth map of the driving frame (camera z, as stored in the records).
    poses: the clip's `clip_poses`.
    driving, source: frame indices.
    grid_size: g, the side of the grid (the dense motion's resolution, or S).
    with_mouth: also the mouth's opening (`jaw_drop`), not only the head's rigid motion; needs
      `poses.mouth`.

  Returns:
    grid: (g, g, 2) float32 source positions (x, y) in [-1, 1] (align_corners=True); the
      identity where nothing moves.
    foreground: (g, g) bool, the grid points on the person.
  """
  size = driving_depth.shape[0]
  coords = grid_coordinates(grid_size)
  pixels = (coords + 1.) / 2. * (size - 1)  # (col, row), fractional
  cols = np.clip(np.round(pixels[..., 0]).astype(int), 0, size - 1)
  rows = np.clip(np.round(pixels[..., 1]).astype(int), 0, size - 1)
  depth = np.asarray(driving_depth, np.float64)[rows, cols]
  focal, centre = camera.focal_length(size), (size - 1) / 2
  points = np.stack([(pixels[..., 0] - centre) / focal * depth,
                     (pixels[..., 1] - centre) / focal * depth, depth], -1)
  body = (points - poses.origin[driving]) / poses.scale
  head = body @ poses.rotation[driving]  # rotation^T p, for row vectors
  if with_mouth:
    if poses.mouth is None or poses.mouth_shape is None:
      raise ValueError('backward_grid(with_mouth=True): these poses carry no mouth opening '
                       '(make them with poses_of or clip_poses)')
    head = head - jaw_drop(head, poses.mouth_shape, poses.mouth[driving], poses.mouth[source])
  turned = head @ poses.rotation[source].T
  shoulders = body[..., 1] > SHOULDERS_Y
  body_in_source = np.where(shoulders[..., None], body, turned)
  in_source = poses.origin[source] + poses.scale * body_in_source
  projected = in_source[..., :2] / in_source[..., 2:] * focal + centre
  foreground = depth < camera.BACKGROUND_DEPTH - BACKGROUND_MARGIN
  grid = np.where(foreground[..., None], projected / (size - 1) * 2. - 1., coords)
  return grid.astype(np.float32), foreground
