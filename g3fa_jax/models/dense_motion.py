"""Dense motion network (FOMM): sparse keypoint motions -> dense deformation and occlusion."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from g3fa_jax.models.blocks import Conv
from g3fa_jax.models.hourglass import Hourglass
from g3fa_jax.ops.antialias import antialias_downsample
from g3fa_jax.ops.grid import kp2gaussian, make_coordinate_grid
from g3fa_jax.ops.grid_sample import grid_sample
from g3fa_jax.ops.highpass import gaussian_blur


def inverse_2x2(m: jnp.ndarray) -> jnp.ndarray:
  """Inverse of (..., 2, 2) matrices by the adjugate formula."""
  a, b = m[..., 0, 0], m[..., 0, 1]
  c, d = m[..., 1, 0], m[..., 1, 1]
  det = a * d - b * c
  adj = jnp.stack([jnp.stack([d, -b], -1), jnp.stack([-c, a], -1)], -2)
  return adj / det[..., None, None]


def heatmap_representation(spatial_size: tuple[int, int], kp_driving: dict, kp_source: dict,
                           kp_variance: float) -> jnp.ndarray:
  """(B, K+1, h, w, 1): gaussian(driving) - gaussian(source), background channel 0 first."""
  heatmap = (kp2gaussian(kp_driving['value'], spatial_size, kp_variance)
             - kp2gaussian(kp_source['value'], spatial_size, kp_variance))
  zeros = jnp.zeros_like(heatmap[:, :1])
  return jnp.concatenate([zeros, heatmap], axis=1)[..., None]


def sparse_motions(spatial_size: tuple[int, int], kp_driving: dict,
                   kp_source: dict) -> jnp.ndarray:
  """(B, K+1, h, w, 2) sampling grids: identity, then J_s J_d^-1 (z - q_d) + q_s per keypoint."""
  h, w = spatial_size
  value_d, value_s = kp_driving['value'], kp_source['value']
  identity = make_coordinate_grid((h, w)).astype(value_s.dtype)
  coords = identity[None, None] - value_d[:, :, None, None, :]
  if 'jacobian' in kp_driving:
    jacobian = jnp.matmul(kp_source['jacobian'], inverse_2x2(kp_driving['jacobian']))
    coords = jnp.sum(jacobian[:, :, None, None] * coords[..., None, :], axis=-1)
  driving_to_source = coords + value_s[:, :, None, None, :]
  identity = jnp.broadcast_to(identity[None, None], (value_s.shape[0], 1, h, w, 2))
  return jnp.concatenate([identity, driving_to_source], axis=1)


class DenseMotionNetwork(nn.Module):
  """Predicts how to warp the source into the driving frame from the two sets of keypoints.

  Call: (source (B, H, W, C) in [0, 1], kp_driving, kp_source, train) -> dict with, at the
  `scale_factor` resolution (h, w): 'sparse_deformed' (B, K+1, h, w, C), 'mask' (B, h, w, K+1)
  (softmax over the K+1 motions), 'deformation' (B, h, w, 2) sampling grid (x, y) and, with
  `estimate_occlusion_map`, 'occlusion_map' (B, h, w, 1) in (0, 1). `align_corners` is the
  sampling convention of its warps (see `grid_sample`; False officially).
  `zero_motion_logit_offset` (a g3fa-jax training option, scalar, may be traced): added to the
  mask's logit of the zero-motion channel; a large negative value withholds that channel, so the
  warp must use the keypoints' motions (see `train.zero_motion_warmup_steps`). None: the official
  network.
  `mask_blur_sigma` (a g3fa-jax option; 0 officially): the mask blurred over the (h, w) grid by a
  Gaussian of that many cells after the softmax (still weights that sum to 1), so that
  neighbouring cells cannot follow different keypoints with a seam between them.
  """
  block_expansion: int
  num_blocks: int
  max_features: int
  num_kp: int
  num_channels: int
  estimate_occlusion_map: bool = False
  scale_factor: float = 1.0
  kp_variance: float = 0.01
  antialias_kernel: tuple[tuple[float, ...], ...] | None = None
  align_corners: bool = False
  mask_blur_sigma: float = 0.0

  @nn.compact
  def __call__(self, source_image: jnp.ndarray, kp_driving: dict, kp_source: dict,
               train: bool, zero_motion_logit_offset: jnp.ndarray | float | None = None
               ) -> dict[str, jnp.ndarray]:
    if self.scale_factor != 1:
      source_image = antialias_downsample(source_image, self.scale_factor, self.antialias_kernel)
    b, h, w, c = source_image.shape
    k1 = self.num_kp + 1

    heatmap = heatmap_representation((h, w), kp_driving, kp_source, self.kp_variance)
    motions = sparse_motions((h, w), kp_driving, kp_source)
    source_repeat = jnp.broadcast_to(source_image[:, None], (b, k1, h, w, c))
    deformed = grid_sample(source_repeat.reshape(b * k1, h, w, c),
                           motions.reshape(b * k1, h, w, 2),
                           align_corners=self.align_corners).reshape(b, k1, h, w, c)
    out = {'sparse_deformed': deformed}

    # Channels ordered per motion k: [heatmap_k, deformed_k (C)], as the official view(). The
    # heatmaps come from float32 keypoints: in the image's dtype, so that a bfloat16 step does not
    # silently run the hourglass, and after it the whole generator, in float32.
    inputs = jnp.concatenate([heatmap.astype(deformed.dtype), deformed], axis=-1)
    inputs = jnp.transpose(inputs, (0, 2, 3, 1, 4)).reshape(b, h, w, k1 * (c + 1))
    prediction = Hourglass(self.block_expansion, self.num_blocks, self.max_features,
                           name='hourglass')(inputs, train)

    logits = Conv(k1, 7, 3, name='mask')(prediction)
    if zero_motion_logit_offset is not None:
      logits = logits.at[..., 0].add(jnp.asarray(zero_motion_logit_offset, logits.dtype))
    mask = nn.softmax(logits, axis=-1)
    if self.mask_blur_sigma > 0:
      mask = gaussian_blur(mask, self.mask_blur_sigma)
    out['mask'] = mask
    out['deformation'] = jnp.sum(jnp.transpose(motions, (0, 2, 3, 1, 4)) * mask[..., None],
                                 axis=3)
    if self.estimate_occlusion_map:
      out['occlusion_map'] = nn.sigmoid(Conv(1, 7, 3, name='occlusion')(prediction))
    return out
