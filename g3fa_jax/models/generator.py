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


def deform_input(x: jnp.ndarray, deformation: jnp.ndarray,
                 align_corners: bool = False) -> jnp.ndarray:
  """Warps (B, H, W, C) by a (B, h, w, 2) grid, first resized bilinearly to (H, W) if needed;
  `align_corners` is the convention of both the resize and the sampling (see `grid_sample`:
  with True, an identity grid at any resolution warps to the input exactly)."""
  if deformation.shape[1:3] != x.shape[1:3]:
    deformation = resize_bilinear(deformation, x.shape[1:3], align_corners=align_corners)
  return grid_sample(x, deformation, align_corners=align_corners)


class Generator(nn.Module):
  """The official `OcclusionAwareGenerator_SPADE` (`num_bottleneck_blocks` is unused there too).

  Call: (source (B, H, W, C) in [0, 1], kp_source, kp_driving, train) -> dict of NHWC arrays:
  'prediction' (B, H, W, 3) in (0, 1), 'deformed' (B, H, W, C) (source warped by the dense
  motion), and at the dense-motion resolution (h, w): 'mask' (B, h, w, K+1), 'sparse_deformed'
  (B, K+1, h, w, C), 'deformation' (B, h, w, 2), 'occlusion_map' (B, h, w, 1) if estimated.
  The feature width min(max_features, block_expansion * 2^num_down_blocks) must equal the
  renderer's `render_params.output_channels` (256 officially): the decoder takes both, stacked.
  `decoder_hidden_channels` (not an official field; 128 there) is the SPADE decoder's hidden width.
  The decoder upsamples by 2^num_down_blocks, so the prediction has the source's size (the
  official decoder always upsamples 4x, which is the same for its num_down_blocks = 2); one down
  block keeps twice the detail of two on small frames (configs/synthetic.py).
  `warp_align_corners` (not an official field; False there) makes every warp use the
  `align_corners=True` convention, under which zero motion warps exactly to the source.
  `blend_warped_source` (not an official field; False there) makes the prediction
  m * deformed + (1 - m) * decoded, with the mask m (B, H, W, 1) predicted by the decoder from its
  last features (returned as 'blend_mask'), as vid2vid blends a warped frame with a hallucinated
  one: the decoder then renders what the warp cannot show instead of every pixel.
  `zero_motion_logit_offset` (call argument) goes to the dense motion network (see there).
  `encode_only=True` (call argument; keypoints may be None) returns {'source_features': (B, H/2^n,
  W/2^n, F)}, the encoder's output (n = num_down_blocks, F the feature width); passed back as
  `source_features`, it replaces the encoder, so that animation encodes its one source once
  instead of once per driving frame (the official loop's work; the same numbers up to rounding).
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
  warp_align_corners: bool = False
  blend_warped_source: bool = False

  @nn.compact
  def __call__(self, source_image: jnp.ndarray, kp_source: dict, kp_driving: dict,
               train: bool, zero_motion_logit_offset: jnp.ndarray | float | None = None,
               source_features: jnp.ndarray | None = None, encode_only: bool = False
               ) -> dict[str, jnp.ndarray]:
    if source_image.ndim != 4 or source_image.shape[-1] != self.num_channels:
      raise ValueError(f'Generator: expected (B, H, W, {self.num_channels}) source images, '
                       f'got {source_image.shape}')
    if encode_only:
      return {'source_features': self._encode(source_image, train)}
    if source_features is None:
      out = self._encode(source_image, train)
    else:
      out = source_features

    dense_motion = DenseMotionNetwork(
        num_kp=self.num_kp, num_channels=self.num_channels,
        estimate_occlusion_map=self.estimate_occlusion_map,
        antialias_kernel=self.antialias_kernel, align_corners=self.warp_align_corners,
        **dict(self.dense_motion_params),
        name='dense_motion_network')(source_image, kp_driving, kp_source, train,
                                     zero_motion_logit_offset)
    outputs = {k: dense_motion[k] for k in ('mask', 'sparse_deformed', 'deformation')}
    deformation = dense_motion['deformation']
    out = deform_input(out, deformation, self.warp_align_corners)
    if 'occlusion_map' in dense_motion:
      occlusion_map = dense_motion['occlusion_map']
      outputs['occlusion_map'] = occlusion_map
      if occlusion_map.shape[1:3] != out.shape[1:3]:
        occlusion_map = resize_bilinear(occlusion_map, out.shape[1:3], align_corners=False)
      out = out * occlusion_map
    outputs['deformed'] = deform_input(source_image, deformation, self.warp_align_corners)

    renderer = RenderModel(**dict(self.render_params), name='Render_model')
    if out.shape[-1] != renderer.output_channels:
      raise ValueError(
          f'Generator: feature width {out.shape[-1]} (min(max_features, block_expansion * '
          f'2^num_down_blocks)) must equal render_params.output_channels '
          f'({renderer.output_channels}); change one of them')
    out = jnp.concatenate([out, renderer(out, train)], axis=-1)
    decoder = SPADEDecoder(self.decoder_hidden_channels, self.num_down_blocks, name='decoder')
    if self.blend_warped_source:
      decoded, blend_mask = decoder(out, with_blend_mask=True)
      outputs['blend_mask'] = blend_mask
      outputs['prediction'] = blend_mask * outputs['deformed'] + (1 - blend_mask) * decoded
    else:
      outputs['prediction'] = decoder(out)
    return outputs

  def _encode(self, source_image: jnp.ndarray, train: bool) -> jnp.ndarray:
    """The source's features (B, H/2^n, W/2^n, F); called from `__call__` only (its submodules
    are defined there)."""
    out = SameBlock2d(self.block_expansion, 7, 3, name='first')(source_image, train)
    for i in range(self.num_down_blocks):
      features = min(self.max_features, self.block_expansion * (2 ** (i + 1)))
      out = DownBlock2d(features, 3, 1, name=f'down_blocks_{i}')(out, train)
    return out
