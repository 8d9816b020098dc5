"""Ground-truth motion of the synthetic heads (g3fa_jax.synthetic.flow): zero when nothing moves,
and a warp by it brings a turned head back to where the driving frame has it."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from g3fa_jax.models.generator import deform_input
from g3fa_jax.synthetic import clips as clips_lib
from g3fa_jax.synthetic import flow
from g3fa_jax.synthetic import render
from g3fa_jax.synthetic import sdf

SIZE = 48


def two_frames(yaw: float, shift_x: float):
  """Frame 0 and the same head turned by `yaw` degrees and moved by `shift_x` head units
  (all else equal), rendered, with their poses."""
  clip = clips_lib.make_clip(seed=3, clip_index=0, identity_index=0, num_frames=2)
  translation = np.repeat(clip.frames.translation[:1], 2, 0).copy()
  translation[1, 0] += shift_x
  angles = np.array([[0., 0., 0.], [yaw, 0., 0.]], np.float32)
  frames = clips_lib.posed_frames(clip.frames.replace(translation=translation), angles)
  clip = clips_lib.Clip(identity=clip.identity, frames=frames, angles=angles, identity_index=0,
                        clip_index=0)
  rendered = render.render_clip(clip, size=SIZE)
  return rendered['image'], rendered['depth'][..., 0], flow.poses_of(clip)


@pytest.fixture(scope='module')
def turning_head():
  return two_frames(yaw=24., shift_x=0.)


def warp_and_copy_errors(image, depth, poses):
  """Mean |warped source - driving| and |source - driving| on the person."""
  grid, foreground = flow.backward_grid(depth[1], poses, driving=1, source=0, grid_size=SIZE)
  warped = np.asarray(deform_input(jnp.asarray(image[:1]), jnp.asarray(grid[None]), True))[0]
  return (np.abs(warped - image[1])[foreground].mean(),
          np.abs(image[0] - image[1])[foreground].mean())


def test_a_frame_against_itself_does_not_move(turning_head):
  _, depth, poses = turning_head
  grid, foreground = flow.backward_grid(depth[1], poses, driving=1, source=1, grid_size=16)
  np.testing.assert_allclose(grid, flow.grid_coordinates(16), atol=1e-5)
  assert 0.2 < foreground.mean() < 0.9


def test_the_background_does_not_move_and_the_face_does(turning_head):
  _, depth, poses = turning_head
  grid, foreground = flow.backward_grid(depth[1], poses, driving=1, source=0, grid_size=SIZE)
  shift = np.abs(grid - flow.grid_coordinates(SIZE)).max(-1)
  assert np.all(shift[~foreground] < 1e-6)
  # A 24-degree turn moves the face by pixels: at least half a pixel (in [-1, 1] units) over a
  # good part of the person.
  assert np.mean(shift[foreground] > 1. / (SIZE - 1)) > 0.3


def test_warping_by_the_ground_truth_undoes_a_move():
  warp_error, copy_error = warp_and_copy_errors(*two_frames(yaw=0., shift_x=0.4))
  # Not zero: the silhouette's edge pixels and the shoulders' shading.
  assert warp_error < 0.4 * copy_error


def test_warping_by_the_ground_truth_helps_with_a_turn(turning_head):
  warp_error, copy_error = warp_and_copy_errors(*turning_head)
  # The light stays with the camera, so a turned face is shaded differently: a warp moves the
  # features to the right places but cannot reshade them (0.124 vs 0.137 here).
  assert warp_error < 0.95 * copy_error


def test_a_record_without_synthetic_parameters_is_refused():
  with pytest.raises(ValueError, match='not a synthetic clip'):
    flow.clip_poses({'key': 'id0/v0/0', 'num_frames': 2, 'fps': 25.})


def opening_mouth():
  """Frame 0 of a clip and the same frame with the mouth opened from 0 to 1 (all else equal),
  rendered, with their poses."""
  clip = clips_lib.make_clip(seed=3, clip_index=0, identity_index=0, num_frames=2)
  held = {name: np.repeat(np.asarray(getattr(clip.frames, name))[:1], 2, 0)
          for name in ('rotation', 'translation', 'blink', 'brow', 'gaze', 'light_dir',
                       'light_colour', 'ambient', 'bg_top', 'bg_bottom', 'bg_seed')}
  frames = clip.frames.replace(mouth=np.array([0., 1.], np.float32), **held)
  clip = clips_lib.Clip(identity=clip.identity, frames=frames,
                        angles=np.repeat(clip.angles[:1], 2, 0), identity_index=0, clip_index=0)
  rendered = render.render_clip(clip, size=SIZE)
  return rendered['image'], rendered['depth'][..., 0], flow.poses_of(clip)


def test_the_jaw_drop_parts_the_lips_and_is_zero_without_a_change():
  shape = np.array([1., 0.55, 0.06])
  gap, drop = (float(v) for v in sdf.mouth_opening(1.))
  upper_lip, lower_lip, chin = 0.55 - 0.045 - 0.5 * gap, 0.55 + 0.05 + 0.5 * gap + drop, 0.95 + drop
  points = np.array([[0., y, -1.] for y in (upper_lip, lower_lip, chin, -0.5)])
  moved = flow.jaw_drop(points, shape, driving_opening=1., source_opening=0.)
  # y points down: the upper lip has risen, the lower lip and the chin dropped, the brow is still.
  np.testing.assert_allclose(moved[:, 1], [-0.5 * gap, 0.5 * gap + drop, drop, 0.], atol=1e-12)
  np.testing.assert_array_equal(moved[:, [0, 2]], 0.)
  np.testing.assert_array_equal(flow.jaw_drop(points, shape, 0.4, 0.4), 0.)
  # The back of the head and the far side of the cheeks do not move.
  np.testing.assert_array_equal(flow.jaw_drop(np.array([[0., lower_lip, 0.5],
                                                        [1.2, lower_lip, -1.]]), shape, 1., 0.), 0.)


def test_warping_by_the_motion_with_the_mouth_opens_it():
  image, depth, poses = opening_mouth()
  rigid, _ = flow.backward_grid(depth[1], poses, driving=1, source=0, grid_size=SIZE)
  np.testing.assert_allclose(rigid, flow.grid_coordinates(SIZE), atol=1e-5)  # the head is still
  grid, _ = flow.backward_grid(depth[1], poses, driving=1, source=0, grid_size=SIZE,
                               with_mouth=True)
  warped = np.asarray(deform_input(jnp.asarray(image[:1]), jnp.asarray(grid[None]), True))[0]
  moved = np.abs(grid - rigid).max(-1) > 0.5 / (SIZE - 1)
  assert 0.005 < moved.mean() < 0.1  # the mouth and the chin, nothing else
  # Where the lips part and the jaw drops, the warped source is nearer to the open mouth
  # (its dark inside cannot be made from closed lips, so not by much more).
  warp_error = np.abs(warped - image[1])[moved].mean()
  copy_error = np.abs(image[0] - image[1])[moved].mean()
  assert warp_error < 0.85 * copy_error


def test_the_motion_with_the_mouth_needs_the_openings():
  _, depth, poses = opening_mouth()
  rigid_only = flow.ClipPoses(rotation=poses.rotation, origin=poses.origin, scale=poses.scale)
  with pytest.raises(ValueError, match='no mouth opening'):
    flow.backward_grid(depth[1], rigid_only, driving=1, source=0, grid_size=16, with_mouth=True)
