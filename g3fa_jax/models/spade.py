"""SPADE decoder of the G3FA/FNeVR generator (spatially-adaptive denormalisation)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from g3fa_jax.models.blocks import Conv
from g3fa_jax.ops.resize import resize_bilinear, resize_nearest


def instance_norm(x: jnp.ndarray, epsilon: float = 1e-5) -> jnp.ndarray:
  """Parameter-free InstanceNorm over H, W of (B, H, W, C), biased variance."""
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return (x - mean) * jnp.reciprocal(jnp.sqrt(var + epsilon))


class SPADELayer(nn.Module):
  """x * (1 + gamma(seg)) + beta(seg) on the instance-normalised x; seg resized (nearest) to x."""
  hidden_channel: int = 128

  @nn.compact
  def __call__(self, x: jnp.ndarray, modulation: jnp.ndarray) -> jnp.ndarray:
    normalized = instance_norm(x)
    modulation = resize_nearest(modulation, x.shape[1:3])
    actv = nn.relu(Conv(self.hidden_channel, 3, 1, name='mlp_shared_0')(modulation))
    gamma = Conv(x.shape[-1], 3, 1, name='mlp_gamma')(actv)
    beta = Conv(x.shape[-1], 3, 1, name='mlp_beta')(actv)
    return normalized * (1 + gamma) + beta


class SPADEBlock(nn.Module):
  """SPADE, ReLU, conv (C -> C), SPADE, ReLU, conv (C -> out_channel); the SPADE layers' hidden
  convolution has `hidden_channel` channels."""
  out_channel: int
  hidden_channel: int = 128

  @nn.compact
  def __call__(self, x: jnp.ndarray, modulation: jnp.ndarray) -> jnp.ndarray:
    out = nn.relu(SPADELayer(self.hidden_channel, name='SPADE_0')(x, modulation))
    out = Conv(x.shape[-1], 3, 1, name='conv_0')(out)
    out = nn.relu(SPADELayer(self.hidden_channel, name='SPADE_1')(out, modulation))
    return Conv(self.out_channel, 3, 1, name='conv_1')(out)


def _upsample_bilinear2x(x: jnp.ndarray) -> jnp.ndarray:
  """`nn.UpsamplingBilinear2d(scale_factor=2)` (align_corners=True)."""
  return resize_bilinear(x, (2 * x.shape[1], 2 * x.shape[2]), align_corners=True)


class SPADEDecoder(nn.Module):
  """(B, h, w, C) -> (B, 2^u h, 2^u w, 3) image in (0, 1), u = `upsamplings`; channels
  C -> C/4 -> C/16 -> C/16 -> C/16 over four SPADE blocks.

  `mid_channel` is the width of the segmentation map and of every SPADE layer's hidden
  convolution (128 in the official decoder, where both are fixed). `upsamplings` (not an
  official field) is how many of the first blocks are followed by a bilinear 2x upsampling: 2
  officially; fewer keep the decoder's input resolution closer to the output's (the generator
  ties it to `num_down_blocks`). The parameters are the same for every value.
  """
  mid_channel: int = 128
  upsamplings: int = 2

  @nn.compact
  def __call__(self, x: jnp.ndarray, with_blend_mask: bool = False
               ) -> jnp.ndarray | tuple[jnp.ndarray, jnp.ndarray]:
    """With `with_blend_mask` (a g3fa-jax option) also returns a (B, H', W', 1) mask in (0, 1)
    from the last features, by a 7x7 convolution of its own ('blend_mask')."""
    if not 0 <= self.upsamplings <= 3:
      raise ValueError(f'SPADEDecoder: upsamplings must be 0..3, got {self.upsamplings}')
    c = x.shape[-1]
    seg = nn.relu(Conv(self.mid_channel, 3, 1, name='seg_conv_0')(x))
    for i, out_channel in enumerate((c // 4, c // 16, c // 16, c // 16)):
      x = SPADEBlock(out_channel, self.mid_channel, name=f'SPADE_{i}')(x, seg)
      if i < self.upsamplings:
        x = _upsample_bilinear2x(x)
    image = nn.sigmoid(Conv(3, 7, 3, name='final_0')(x))
    if with_blend_mask:
      return image, nn.sigmoid(Conv(1, 7, 3, name='blend_mask')(x))
    return image
