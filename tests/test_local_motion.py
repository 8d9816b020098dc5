"""The local motion loss (g3fa_jax/losses/local_motion.py): each keypoint's own affine motion
judged in a window around it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from g3fa_jax import losses
from g3fa_jax.losses.local_motion import LocalMotionSettings, local_motion_l1
from g3fa_jax.ops.highpass import gaussian_blur, highpass


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
                                kp_driving=kp,
                                local_motion_settings=LocalMotionSettings(window_variance=0.02))
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


def test_highpass_removes_smooth_shading_and_keeps_edges():
  flat = jnp.full((1, 20, 20, 3), 0.4)
  # The blur is renormalised at the border: a constant frame stays constant, its high-pass is 0.
  np.testing.assert_allclose(np.asarray(gaussian_blur(flat, 2.0)), 0.4, atol=1e-6)
  np.testing.assert_allclose(np.asarray(highpass(flat, 2.0)), 0., atol=1e-6)
  y, x = np.mgrid[0:32, 0:32] / 31.
  ramp = jnp.asarray(np.broadcast_to((0.2 + 0.5 * x)[None, ..., None], (1, 32, 32, 1)), jnp.float32)
  step = jnp.asarray((x > 0.5)[None, ..., None], jnp.float32)
  # Away from the border a linear ramp (shading) is what the blur gives back; a step is not.
  assert float(jnp.abs(highpass(ramp, 1.5)[:, 6:-6, 6:-6]).max()) < 1e-5
  assert float(jnp.abs(highpass(step, 1.5)[:, 6:-6, 6:-6]).max()) > 0.3
  np.testing.assert_array_equal(np.asarray(highpass(step, 0.)), np.asarray(step))


def _shaded_texture(shift_px: float, size: int = 64) -> jnp.ndarray:
  """(1, size, size, 3): small dark spots moved right by `shift_px`, on a strong smooth shading
  that does not move (the light stays with the camera while the surface turns)."""
  y, x = np.mgrid[0:size, 0:size].astype(np.float64)
  spots = np.zeros((size, size))
  for cy, cx in ((20, 20), (22, 40), (40, 30), (44, 16), (36, 46)):
    spots += np.exp(-((x - cx - shift_px) ** 2 + (y - cy) ** 2) / (2 * 1.5 ** 2))
  shading = 0.2 + 0.7 * np.exp(-((x - 32) ** 2 + (y - 32) ** 2) / (2 * 14. ** 2))
  return jnp.asarray(np.repeat((shading * (1 - 0.2 * spots))[None, ..., None], 3, -1),
                     jnp.float32)


def test_highpass_puts_the_minimum_at_the_true_motion_under_fixed_shading():
  """The reason for `highpass_sigma`: on frames whose shading stays put while the texture moves,
  the plain L1 prefers too little motion; the high-passed L1 prefers the true one."""
  source, driving = _shaded_texture(0.), _shaded_texture(3.)
  points = np.array([[20, 20], [40, 22], [30, 40], [16, 44], [46, 36]]) / 63. * 2 - 1
  points = points + [3 * 2 / 63, 0]
  kp_driving = _keypoints(points)

  def loss(fraction: float, sigma: float) -> float:
    kp_source = _keypoints(points - fraction * np.array([3 * 2 / 63, 0.]))
    return float(local_motion_l1(source, driving, kp_source, kp_driving, window_variance=0.01,
                                 highpass_sigma=sigma))

  fractions = (0., 0.5, 0.75, 1.0, 1.25)
  plain = [loss(f, 0.) for f in fractions]
  passed = [loss(f, 1.0) for f in fractions]
  assert int(np.argmin(passed)) == fractions.index(1.0)
  assert int(np.argmin(plain)) < fractions.index(1.0)
