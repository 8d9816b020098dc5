"""Each keypoint's own motion judged where it acts: a g3fa-jax training option.

FOMM trains the keypoints only through the dense motion's mask, a softmax over the zero motion and
the K keypoint motions. On a static background the zero motion is right almost everywhere, the
mask settles on it within tens of steps, and from then on no gradient reaches the keypoints: they
never become useful (docs/synthetic_training.md). This loss bypasses the mask: the
source warped by keypoint k's local affine motion (`sparse_motions`, the same motion the dense
motion network blends) must match the driving frame in a Gaussian window around the driving
keypoint. The windows are held fixed (stop-gradient), so no gradient of this loss moves a
keypoint to where nothing moves; it can only make its motion right where it is, and a keypoint on
the head must then be detected at corresponding points of the two frames: it tracks the head.
(Nothing in it keeps keypoints on the head either: trained without the equivariance losses they
drift to the static background, and with them alone they collapse onto one point; hence the
keypoint separation loss, `keypoint_separation.py`.)
Judged on an image pyramid (`scales`), a keypoint a few pixels off still feels where to go: the
blurred levels widen the basin of the L1, as in FOMM's multi-scale perceptual loss.
With `highpass_sigma` the frames are compared high-passed (each minus its Gaussian blur): the
shading of a turning head stays with the light, not with the face, and on the plain frames it
pulls the L1's minimum towards half the true motion; on the high-passed ones the true motion is
the minimum (docs/synthetic_training.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections

from g3fa_jax.models.dense_motion import sparse_motions
from g3fa_jax.ops.antialias import antialias_downsample
from g3fa_jax.ops.grid import kp2gaussian
from g3fa_jax.ops.grid_sample import grid_sample
from g3fa_jax.ops.highpass import highpass


@dataclasses.dataclass(frozen=True)
class LocalMotionSettings:
  """`local_motion_l1`'s keyword arguments from a config (hashable: a jit static value)."""
  window_variance: float = 0.01
  align_corners: bool = True
  scales: tuple[float, ...] = (1.0,)
  highpass_sigma: float = 0.

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'LocalMotionSettings':
    """From `train.local_motion_{variance,scales,highpass}` and the generator's
    `warp_align_corners`."""
    train = config.train
    return cls(window_variance=float(train.get('local_motion_variance', 0.01)),
               align_corners=bool(config.model.generator_params.get('warp_align_corners',
                                                                    False)),
               scales=tuple(float(x) for x in train.get('local_motion_scales', (1.0,))),
               highpass_sigma=float(train.get('local_motion_highpass', 0.)))

  def kwargs(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def local_motion_l1(source: jnp.ndarray, driving: jnp.ndarray, kp_source: dict, kp_driving: dict,
                    *, window_variance: float = 0.01, align_corners: bool = True,
                    scales: Sequence[float] = (1.0,), highpass_sigma: float = 0.
                    ) -> jnp.ndarray:
  """Mean over keypoints of the window-weighted L1 between the locally warped source and driving.

  Args:
    source, driving: (B, H, W, C) frames in [0, 1].
    kp_source, kp_driving: {'value': (B, K, 2) in [-1, 1], optional 'jacobian': (B, K, 2, 2)}.
    window_variance: variance of each keypoint's Gaussian window at scale 1, in [-1, 1] units
      (0.01: a standard deviation of a twentieth of the frame); at scale s, window_variance / s^2.
    align_corners: the sampling convention of the warp (the generator's `warp_align_corners`).
    scales: the pyramid levels (1: the frames as given; 0.5: antialiased to half size, ...).
    highpass_sigma: > 0: both frames are first high-passed (`g3fa_jax.ops.highpass`) with a
      Gaussian of this standard deviation in pixels of the given frames.

  Returns:
    Scalar >= 0: sum_z w_k(z) |source(motion_k(z)) - driving(z)|, w_k the window around driving
    keypoint k normalised to sum 1, averaged over channels, keypoints, the batch and the scales.
  """
  if not scales:
    raise ValueError('local_motion_l1: scales is empty')
  source, driving = highpass(source, highpass_sigma), highpass(driving, highpass_sigma)
  # Each level's windows span the same number of its pixels: wider on the coarser levels.
  levels = [_one_scale(antialias_downsample(source, s), antialias_downsample(driving, s),
                       kp_source, kp_driving, window_variance / s ** 2, align_corners)
            for s in scales]
  return sum(levels) / len(levels)


def _one_scale(source: jnp.ndarray, driving: jnp.ndarray, kp_source: dict, kp_driving: dict,
               window_variance: float, align_corners: bool) -> jnp.ndarray:
  b, h, w, c = source.shape
  motions = sparse_motions((h, w), kp_driving, kp_source)[:, 1:]  # without the zero motion
  k = motions.shape[1]
  repeated = jnp.broadcast_to(source[:, None], (b, k, h, w, c)).reshape(b * k, h, w, c)
  warped = grid_sample(repeated, motions.reshape(b * k, h, w, 2),
                       align_corners=align_corners).reshape(b, k, h, w, c)
  error = jnp.mean(jnp.abs(warped - driving[:, None]), axis=-1)  # (B, K, H, W)
  window = jax.lax.stop_gradient(kp2gaussian(kp_driving['value'], (h, w), window_variance))
  window = window / jnp.maximum(jnp.sum(window, axis=(-2, -1), keepdims=True), 1e-12)
  return jnp.mean(jnp.sum(window * error, axis=(-2, -1)))
