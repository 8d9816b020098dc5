"""G3FA training losses: perceptual (VGG19 pyramid), LSGAN + feature matching on the ensemble of
RGB/depth/normal discriminators, keypoint equivariance under a random TPS, and their assembly into
the official per-step loss dicts (`objective`)."""

from g3fa_jax.losses.equivariance import equivariance_jacobian_loss
from g3fa_jax.losses.equivariance import equivariance_value_loss
from g3fa_jax.losses.equivariance import sample_tps
from g3fa_jax.losses.equivariance import transform_frame
from g3fa_jax.losses.equivariance import warp_coordinates
from g3fa_jax.losses.equivariance import warp_jacobian
from g3fa_jax.losses.gan import feature_matching_loss
from g3fa_jax.losses.gan import lsgan_discriminator_loss
from g3fa_jax.losses.gan import lsgan_generator_loss
from g3fa_jax.losses.objective import discriminator_losses
from g3fa_jax.losses.objective import ensemble_map
from g3fa_jax.losses.objective import generator_losses
from g3fa_jax.losses.objective import OFFICIAL_LOSS_WEIGHTS
from g3fa_jax.losses.perceptual import feature_maps_needed
from g3fa_jax.losses.perceptual import image_pyramid
from g3fa_jax.losses.perceptual import perceptual_loss
from g3fa_jax.losses.perceptual import PYRAMID_SCALES
