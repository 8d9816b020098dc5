"""Facial landmarks of the synthetic heads (g3fa_jax.synthetic.landmarks): on the rendered face,
carried by the head's true motion, the lips parting with the mouth, mirrored left for right."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax.synthetic import camera
from g3fa_jax.synthetic import clips as clips_lib
from g3fa_jax.synthetic import flow
from g3fa_jax.synthetic import landmarks
from g3fa_jax.synthetic import render

SIZE = 64
# Landmarks the camera sees on a frontal face (the cheeks, brows and jaw lie a little inside the
# skin or hair, by construction: they are anchors, not surface samples).
FRONT = ('right_eye', 'left_eye', 'nose_tip', 'upper_lip', 'lower_lip', 'chin', 'forehead')


def posed_clip(yaws, mouth: float = 0.2) -> clips_lib.Clip:
  """Identity 0's clip with the given yaws (degrees), no pitch, roll or pivot offset."""
  clip = clips_lib.make_clip(seed=0, clip_index=0, identity_index=0, num_frames=len(yaws))
  angles = np.stack([np.asarray(yaws, np.float32), np.zeros(len(yaws), np.float32),
                     np.zeros(len(yaws), np.float32)], -1)
  frames = clips_lib.posed_frames(clip.frames, angles).replace(
      translation=np.zeros((len(yaws), 3), np.float32),
      mouth=np.full(len(yaws), mouth, np.float32))
  return clips_lib.Clip(identity=clip.identity, frames=frames, angles=angles, identity_index=0,
                        clip_index=0)


@pytest.fixture(scope='module')
def turning():
  clip = posed_clip([0., 20.])
  depth = np.asarray(render.render_clip(clip, size=SIZE)['depth'][..., 0])
  return clip, depth


def to_pixels(points: np.ndarray) -> np.ndarray:
  return np.round((points + 1.) / 2. * (SIZE - 1)).astype(int)


def test_the_visible_landmarks_lie_on_the_rendered_face(turning):
  clip, depth = turning
  points = landmarks.camera_points(clip)[0]
  pixels = to_pixels(landmarks.clip_landmarks(clip, SIZE)[0])
  for name in FRONT:
    k = landmarks.NAMES.index(name)
    col, row = pixels[k]
    # The rendered depth there within 0.1 head units of the landmark's (a pixel is ~0.07 head
    # units at the face; the background is 1.5 head units behind it).
    assert abs(depth[0, row, col] - points[k, 2]) < 0.1 * camera.HEAD_SCALE, name
  assert np.all(depth[0, pixels[:, 1], pixels[:, 0]] < camera.BACKGROUND_DEPTH - 0.01)


def test_the_true_motion_carries_the_landmarks_of_a_turning_head(turning):
  clip, depth = turning
  points = landmarks.clip_landmarks(clip, SIZE)
  grid, _ = flow.backward_grid(depth[1], flow.poses_of(clip), driving=1, source=0,
                               grid_size=SIZE)
  moved = []
  for name in ('nose_tip', 'upper_lip', 'chin', 'forehead'):
    k = landmarks.NAMES.index(name)
    col, row = to_pixels(points[1, k])
    # Where the true motion says the driving frame's landmark is in the source frame.
    np.testing.assert_allclose(grid[row, col], points[0, k], atol=2.5 * 2. / (SIZE - 1))
    moved.append(np.abs(points[1, k, 0] - points[0, k, 0]) * (SIZE - 1) / 2.)
  assert min(moved) > 1.5  # a 20-degree turn moves the face's features by pixels


def test_the_lips_part_as_the_mouth_opens():
  closed, opened = (landmarks.clip_landmarks(posed_clip([0.], mouth=m), SIZE)[0]
                    for m in (0., 1.))
  lower, upper = landmarks.NAMES.index('lower_lip'), landmarks.NAMES.index('upper_lip')
  gap = lambda p: p[lower, 1] - p[upper, 1]
  assert gap(opened) - gap(closed) > 3. * 2. / (SIZE - 1)  # more than 3 pixels wider
  eye = landmarks.NAMES.index('right_eye')
  np.testing.assert_allclose(opened[eye], closed[eye], atol=1e-6)


def test_mirroring_swaps_left_and_right():
  frontal = landmarks.clip_landmarks(posed_clip([0.]), SIZE)[0]
  # A frontal, centred head is symmetric: its mirror image has the same landmarks.
  np.testing.assert_allclose(landmarks.mirrored(frontal), frontal, atol=0.02)
  turned = landmarks.clip_landmarks(posed_clip([25.]), SIZE)[0]
  np.testing.assert_allclose(landmarks.mirrored(landmarks.mirrored(turned)), turned)
  right, left = landmarks.NAMES.index('right_eye'), landmarks.NAMES.index('left_eye')
  np.testing.assert_allclose(landmarks.mirrored(turned)[left], turned[right] * [-1., 1.])
  assert len(landmarks.NAMES) == 15  # one per keypoint of G3FA
