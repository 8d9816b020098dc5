"""The official per-step loss dicts of G3FA (`GeneratorFullModel` / `DiscriminatorFullModel`).

Pure functions of already-computed network outputs, so a training step only wires the networks to
them. Discriminator outputs are what `MultiScaleDiscriminator` returns (scales [1]):
{'feature_maps_1': [4 maps], 'prediction_map_1': (B, h, w, 1)}. Loss weights use the official
names (`loss_weights` of the official config): generator_gan, discriminator_gan, feature_matching
(4), perceptual (5), equivariance_value, equivariance_jacobian; and two g3fa-jax options, absent
or 0 in the official recipe: pixel_l1 (a plain L1 between the generated and driving frames) and
warped_l1 (an L1 between the source image warped by the dense motion, the generator's 'deformed'
output, and the driving frame: a direct signal for the motion field) and local_motion (each
keypoint's own affine motion judged in a window around it, `local_motion.local_motion_l1`) and
keypoint_separation (keypoints kept apart, `keypoint_separation.keypoint_separation`) and
landmarks (keypoints anchored to known facial landmarks, `landmark_anchor.pair_landmark_l1`).
A loss whose weight is zero is left out of the dict, as in the official code.

The adversarial terms score the ensemble patch map
  D = (w_rgb D_rgb + w_depth D_depth + w_normal D_normal) / (w_rgb + w_depth + w_normal)
(official: w_rgb = 1, w_depth = w_normal = 0.25); feature matching uses the RGB discriminator only.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp

from g3fa_jax.losses import equivariance
from g3fa_jax.losses import gan
from g3fa_jax.losses import keypoint_separation
from g3fa_jax.losses import landmark_anchor
from g3fa_jax.losses import local_motion
from g3fa_jax.losses import perceptual
from g3fa_jax.models.discriminator import ensemble_patch_maps

DiscOutput = Mapping[str, Any]

# The official loss weights of `config/vox-256.yaml`.
OFFICIAL_LOSS_WEIGHTS = {
    'generator_gan': 1.0, 'discriminator_gan': 1.0, 'feature_matching': (10.0,) * 4,
    'perceptual': (10.0,) * 5, 'equivariance_value': 10.0, 'equivariance_jacobian': 10.0,
}

_SCALE_KEY = '1'  # G3FA discriminates at scale 1 only.


def ensemble_map(rgb: DiscOutput, depth: DiscOutput, normal: DiscOutput, *, w_depth: float,
                 w_normal: float, w_rgb: float = 1.0) -> jax.Array:
  """The ensemble patch map (B, h, w, 1) of the three discriminators' outputs."""
  key = 'prediction_map_' + _SCALE_KEY
  return ensemble_patch_maps(rgb[key], depth[key], normal[key], w_rgb, w_depth, w_normal)


def generator_losses(loss_weights: Mapping[str, Any], *,
                     rgb_real: Optional[DiscOutput] = None,
                     rgb_generated: Optional[DiscOutput] = None,
                     depth_generated: Optional[DiscOutput] = None,
                     normal_generated: Optional[DiscOutput] = None,
                     kp_driving: Optional[Mapping[str, jax.Array]] = None,
                     transformed_kp: Optional[Mapping[str, jax.Array]] = None,
                     tps: Optional[equivariance.Tps] = None,
                     w_depth: float = 0.25, w_normal: float = 0.25, w_rgb: float = 1.0,
                     driving: Optional[jax.Array] = None, prediction: Optional[jax.Array] = None,
                     deformed: Optional[jax.Array] = None,
                     source: Optional[jax.Array] = None,
                     kp_source: Optional[Mapping[str, jax.Array]] = None,
                     local_motion_settings: Optional[local_motion.LocalMotionSettings] = None,
                     separation_sigma: float = 0.1,
                     source_landmarks: Optional[jax.Array] = None,
                     driving_landmarks: Optional[jax.Array] = None,
                     vgg_features: Optional[perceptual.FeatureFn] = None,
                     pyramid_scales: Sequence[float] = perceptual.PYRAMID_SCALES,
                     ) -> dict[str, jax.Array]:
  """The generator / keypoint detector losses of one step.

  Args:
    loss_weights: official `loss_weights`.
    rgb_real: RGB discriminator on the driving frames (for feature matching).
    rgb_generated: RGB discriminator on the generated frames.
    depth_generated: depth discriminator on the generated frames' Unsup3D depth (the official
      code computes it from `stop_gradient(prediction)`).
    normal_generated: normal discriminator on the generated frames' Unsup3D normals (idem).
    kp_driving: keypoints of the driving frames, {'value' (B, K, 2), 'jacobian' (B, K, 2, 2)}.
    transformed_kp: keypoints of `equivariance.transform_frame(tps, driving)`.
    tps: the random transform of this step (`equivariance.sample_tps`).
    w_depth, w_normal, w_rgb: ensemble weights.
    driving: (B, H, W, 3) driving frames in [0, 1] (perceptual and pixel losses only).
    prediction: (B, H, W, 3) generated frames (perceptual and pixel losses only).
    deformed: (B, H, W, 3) source frames warped by the dense motion (warped_l1 only).
    source, kp_source: the source frames and their keypoints (local_motion only, with driving and
      kp_driving).
    local_motion_settings: its windows, sampling convention, pyramid and high-pass (default:
      `LocalMotionSettings()`).
    separation_sigma: the keypoint_separation distance (with kp_source and kp_driving).
    source_landmarks, driving_landmarks: (B, L, 2) in [-1, 1], the frames' facial landmarks
      (landmarks only, with kp_source and kp_driving).
    vgg_features: images -> relu1_1..relu5_1 (perceptual loss only).
    pyramid_scales: perceptual image pyramid (official train_params.scales).

  Returns:
    {'perceptual', 'pixel_l1', 'warped_l1', 'local_motion', 'keypoint_separation', 'landmarks',
    'gen_gan', 'feature_matching', 'equivariance_value', 'equivariance_jacobian'}, scalars, each
    present when its weight is nonzero.
  """
  losses = {}
  pixel_weight = float(loss_weights.get('pixel_l1', 0))
  if pixel_weight != 0:
    if driving is None or prediction is None:
      raise ValueError('generator_losses: pixel_l1 is nonzero but driving or prediction is missing')
    losses['pixel_l1'] = pixel_weight * jnp.mean(jnp.abs(prediction - driving))
  warped_weight = float(loss_weights.get('warped_l1', 0))
  if warped_weight != 0:
    if driving is None or deformed is None:
      raise ValueError('generator_losses: warped_l1 is nonzero but driving or deformed is missing')
    losses['warped_l1'] = warped_weight * jnp.mean(jnp.abs(deformed - driving))
  local_weight = float(loss_weights.get('local_motion', 0))
  if local_weight != 0:
    if source is None or driving is None or kp_source is None or kp_driving is None:
      raise ValueError('generator_losses: local_motion is nonzero but source, driving, kp_source '
                       'or kp_driving is missing')
    settings = local_motion_settings or local_motion.LocalMotionSettings()
    losses['local_motion'] = local_weight * local_motion.local_motion_l1(
        source, driving, kp_source, kp_driving, **settings.kwargs())
  separation_weight = float(loss_weights.get('keypoint_separation', 0))
  if separation_weight != 0:
    if kp_source is None or kp_driving is None:
      raise ValueError('generator_losses: keypoint_separation is nonzero but kp_source or '
                       'kp_driving is missing')
    losses['keypoint_separation'] = separation_weight * keypoint_separation.pair_separation(
        kp_source, kp_driving, separation_sigma)
  landmark_weight = float(loss_weights.get('landmarks', 0))
  if landmark_weight != 0:
    if (kp_source is None or kp_driving is None or source_landmarks is None
        or driving_landmarks is None):
      raise ValueError('generator_losses: landmarks is nonzero but kp_source, kp_driving or the '
                       "frames' landmarks are missing (synthetic data only)")
    losses['landmarks'] = landmark_weight * landmark_anchor.pair_landmark_l1(
        kp_source, kp_driving, source_landmarks, driving_landmarks)
  perceptual_weights = tuple(loss_weights.get('perceptual', ()))
  if sum(perceptual_weights) != 0:
    if vgg_features is None or driving is None or prediction is None:
      raise ValueError('generator_losses: perceptual weights are nonzero but vgg_features, driving '
                       'or prediction is missing')
    losses['perceptual'] = perceptual.perceptual_loss(
        vgg_features, prediction, driving, perceptual_weights, pyramid_scales)

  if loss_weights['generator_gan'] != 0:
    fake = ensemble_map(rgb_generated, depth_generated, normal_generated, w_depth=w_depth,
                        w_normal=w_normal, w_rgb=w_rgb)
    losses['gen_gan'] = gan.lsgan_generator_loss(fake, loss_weights['generator_gan'])
    matching_weights = tuple(loss_weights.get('feature_matching', ()))
    if sum(matching_weights) != 0:
      key = 'feature_maps_' + _SCALE_KEY
      losses['feature_matching'] = gan.feature_matching_loss(
          rgb_real[key], rgb_generated[key], matching_weights)

  if loss_weights['equivariance_value'] != 0:
    losses['equivariance_value'] = equivariance.equivariance_value_loss(
        kp_driving['value'], transformed_kp['value'], tps, loss_weights['equivariance_value'])
  if loss_weights['equivariance_jacobian'] != 0:
    losses['equivariance_jacobian'] = equivariance.equivariance_jacobian_loss(
        kp_driving['jacobian'], transformed_kp['value'], transformed_kp['jacobian'], tps,
        loss_weights['equivariance_jacobian'])
  return losses


def discriminator_losses(loss_weights: Mapping[str, Any], *,
                         rgb_real: DiscOutput, rgb_generated: DiscOutput,
                         depth_real: DiscOutput, depth_generated: DiscOutput,
                         normal_real: DiscOutput, normal_generated: DiscOutput,
                         w_depth: float = 0.25, w_normal: float = 0.25, w_rgb: float = 1.0
                         ) -> dict[str, jax.Array]:
  """{'disc_gan': LSGAN loss of the ensemble on real vs generated (detached) inputs}.

  Each argument is one discriminator's output: RGB on the driving / generated frames, depth and
  normal on the Unsup3D maps of the same frames.
  """
  real = ensemble_map(rgb_real, depth_real, normal_real, w_depth=w_depth, w_normal=w_normal,
                      w_rgb=w_rgb)
  fake = ensemble_map(rgb_generated, depth_generated, normal_generated, w_depth=w_depth,
                      w_normal=w_normal, w_rgb=w_rgb)
  return {'disc_gan': gan.lsgan_discriminator_loss(real, fake, loss_weights['discriminator_gan'])}
