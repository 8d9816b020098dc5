"""The local motion loss (g3fa_jax/losses/local_motion.py): each keypoint's own affine motion
judged in a window around it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from g3fa_jax import losses
from g3fa_jax.losses.local_motion import local_motion_l1


def _smooth_frame(size: int = 64) -> jnp.ndarray:
  """(1, size, size, 3) in [0, 1]: smooth blobs, so a warp's error grows with its offset."""
  y, x = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
  channels = [np.sin(3 * x + 1) * np.cos(2 * y), np.cos(4 * y - x), np.sin(2 * x * y + 2 * y)]
  return jnp.asarray(0.5 + 0.4 * np.stack(channels, -1)[None], jnp.float32)


def _keypoints(values) -> dict:
  values = jnp.asarray(values, jnp.float32)
  values = values if values.ndim == 3 else values[None]
  return {'value': values, 'jacobian': jnp.broadcast_to(jnp.eye(2), values.shape[:2] + (2, 2))}


def _shifted(frame: jnp.ndarray, pixels: int) -> jnp.ndarray:
  """The frame moved right by `pixels` (edge columns repeated)."""
  return jnp.concatenate([jnp.repeat(frame[:, :, :1], pixels, axis=2), frame[:, :, :-pixels]], 2)


POINTS = [[-0.3, -0.2], [0.2, 0.1], [0.0, 0.35]]


def test_zero_when_the_keypoints_carry_the_true_shift():
  source = _smooth_frame()
  driving = _shifted(source, 4)  # content at x in the source is at x + 4 px in the driving frame
  shift = 4 * 2 / 63
  kp_source = _keypoints(POINTS)
  kp_right = _keypoints(np.asarray(POINTS) + [shift, 0.])
  right = float(local_motion_l1(source, driving, kp_source, kp_right))
  still = float(local_motion_l1(source, driving, kp_source, kp_source))
  assert right < 1e-4
  assert still > 0.02
  # Equal frames, equal keypoints: the identity motion, no error.
  assert float(local_motion_l1(source, source, kp_source, kp_source)) < 1e-6


def test_its_gradient_moves_the_source_keypoints_toward_the_truth_and_not_the_windows():
  source = _smooth_frame()
  driving = _shifted(source, 3)
  kp_driving = _keypoints(np.asarray(POINTS) + [3 * 2 / 63, 0.])

  def loss(source_values, driving_values):
    return local_motion_l1(source, driving, _keypoints(source_values),
                           dict(kp_driving, value=driving_values))

  start = jnp.asarray(np.asarray(POINTS) - [3 * 2 / 63, 0.], jnp.float32)[None]
  grad_source, grad_driving = jax.grad(loss, argnums=(0, 1))(start, kp_driving['value'])
  # The source keypoints sit 3 px left of where the driving ones map (POINTS): the loss pulls
  # them right (x grows), so the gradient's x component is negative for each.
  assert np.all(np.asarray(grad_source)[0, :, 0] < 0)
  # Only through the motion: the driving keypoints' gradient is minus the source ones' (the motion
  # depends on their difference), the fixed windows add nothing.
  np.testing.assert_allclose(np.asarray(grad_driving), -np.asarray(grad_source), atol=1e-6)
  moved = start - 0.02 * grad_source / jnp.abs(grad_source).max()
  assert float(loss(moved, kp_driving['value'])) < float(loss(start, kp_driving['value']))


def test_generator_losses_adds_it_by_its_weight():
  source = _smooth_frame()
  driving = _shifted(source, 2)
  kp = _keypoints(POINTS)
  weights = dict(losses.OFFICIAL_LOSS_WEIGHTS, generator_gan=0., perceptual=(0.,) * 5,
                 equivariance_value=0., equivariance_jacobian=0., local_motion=10.)
  got = losses.generator_losses(weights, source=source, driving=driving, kp_source=kp,
                                kp_driving=kp, local_motion_variance=0.02)
  assert set(got) == {'local_motion'}
  expected = 10. * float(local_motion_l1(source, driving, kp, kp, window_variance=0.02))
  assert float(got['local_motion']) == pytest.approx(expected, rel=1e-6)
  with pytest.raises(ValueError, match='local_motion'):
    losses.generator_losses(weights, driving=driving, kp_driving=kp)


def test_pyramid_levels_average_with_windows_of_the_same_pixel_size():
  from g3fa_jax.ops.antialias import antialias_downsample  # pylint: disable=g-import-not-at-top
  source = _smooth_frame()
  driving = _shifted(source, 5)
  kp_source, kp_driving = _keypoints(POINTS), _keypoints(np.asarray(POINTS) + [0.05, 0.])
  both = local_motion_l1(source, driving, kp_source, kp_driving, window_variance=0.01,
                         scales=(1.0, 0.5))
  fine = local_motion_l1(source, driving, kp_source, kp_driving, window_variance=0.01)
  coarse = local_motion_l1(antialias_downsample(source, 0.5), antialias_downsample(driving, 0.5),
                           kp_source, kp_driving, window_variance=0.04)
  assert float(both) == pytest.approx((float(fine) + float(coarse)) / 2, rel=1e-6)
  with pytest.raises(ValueError, match='scales'):
    local_motion_l1(source, driving, kp_source, kp_driving, scales=())
