"""G3FA/FNeVR generator: encode the source, warp its features by the dense motion, mask
occlusions, render with the face volume renderer, decode with SPADE."""

from __future__ import annotations

from typing import Any, Mapping

import jax.numpy as jnp
from flax import linen as nn

from g3fa_jax.models.blocks import DownBlock2d, SameBlock2d
from g3fa_jax.models.dense_motion import DenseMotionNetwork
from g3fa_jax.models.spade import SPADEDecoder
from g3fa_jax.models.volume_renderer import RenderModel
from g3fa_jax.ops.grid_sample import grid_sample
from g3fa_jax.ops.resize import resize_bilinear


def deform_input(x: jnp.ndarray, deformation: jnp.ndarray) -> jnp.ndarray:
  """Warps (B, H, W, C) by a (B, h, w, 2) grid, first resized bilinearly to (H, W) if needed."""
  if deformation.shape[1:3] != x.shape[1:3]:
    deformation = resize_bilinear(deformation, x.shape[1:3], align_corners=False)
  return grid_sample(x, deformation)


class Generator(nn.Module):
  """The official `OcclusionAwareGenerator_SPADE` (`num_bottleneck_blocks` is unused there too).

  Call: (source (B, H, W, C) in [0, 1], kp_source, kp_driving, train) -> dict of NHWC arrays:
  'prediction' (B, H, W, 3) in (0, 1), 'deformed' (B, H, W, C) (source warped by the dense
  motion), and at the dense-motion resolution (h, w): 'mask' (B, h, w, K+1), 'sparse_deformed'
  (B, K+1, h, w, C), 'deformation' (B, h, w, 2), 'occlusion_map' (B, h, w, 1) if estimated.
  The feature width min(max_features, block_expansion * 2^num_down_blocks) must equal the
  renderer's `render_params.output_channels` (256 officially): the decoder takes both, stacked.
  `decoder_hidden_channels` (not an official field; 128 there) is the SPADE decoder's hidden width.
  """
  num_channels: int
  num_kp: int
  block_expansion: int
  max_features: int
  num_down_blocks: int
  dense_motion_params: Mapping[str, Any]
  render_params: Mapping[str, Any]
  estimate_occlusion_map: bool = False
  antialias_kernel: tuple[tuple[float, ...], ...] | None = None
  decoder_hidden_channels: int = 128

  @nn.compact
  def __call__(self, source_image: jnp.ndarray, kp_source: dict, kp_driving: dict,
               train: bool) -> dict[str, jnp.ndarray]:
    if source_image.ndim != 4 or source_image.shape[-1] != self.num_channels:
      raise ValueError(f'Generator: expected (B, H, W, {self.num_channels}) source images, '
                       f'got {source_image.shape}')
    out = SameBlock2d(self.block_expansion, 7, 3, name='first')(source_image, train)
    for i in range(self.num_down_blocks):
      features = min(self.max_features, self.block_expansion * (2 ** (i + 1)))
      out = DownBlock2d(features, 3, 1, name=f'down_blocks_{i}')(out, train)

    dense_motion = DenseMotionNetwork(
        num_kp=self.num_kp, num_channels=self.num_channels,
        estimate_occlusion_map=self.estimate_occlusion_map,
        antialias_kernel=self.antialias_kernel, **dict(self.dense_motion_params),
        name='dense_motion_network')(source_image, kp_driving, kp_source, train)
    outputs = {k: dense_motion[k] for k in ('mask', 'sparse_deformed', 'deformation')}
    deformation = dense_motion['deformation']
    out = deform_input(out, deformation)
    if 'occlusion_map' in dense_motion:
      occlusion_map = dense_motion['occlusion_map']
      outputs['occlusion_map'] = occlusion_map
      if occlusion_map.shape[1:3] != out.shape[1:3]:
        occlusion_map = resize_bilinear(occlusion_map, out.shape[1:3], align_corners=False)
      out = out * occlusion_map
    outputs['deformed'] = deform_input(source_image, deformation)

    renderer = RenderModel(**dict(self.render_params), name='Render_model')
    if out.shape[-1] != renderer.output_channels:
      raise ValueError(
          f'Generator: feature width {out.shape[-1]} (min(max_features, block_expansion * '
          f'2^num_down_blocks)) must equal render_params.output_channels '
          f'({renderer.output_channels}); change one of them')
    out = jnp.concatenate([out, renderer(out, train)], axis=-1)
    outputs['prediction'] = SPADEDecoder(self.decoder_hidden_channels, name='decoder')(out)
    return outputs
