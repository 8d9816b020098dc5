"""SPADE decoder of the G3FA/FNeVR generator (spatially-adaptive denormalisation).

Each SPADE layer's shared convolution reads the segmentation map nearest-upsampled to the layer's
size (x2 and x4 in the decoder). `NearestUpConv3x3` computes that convolution on the small map
directly (`g3fa_jax.ops.upsampled_conv`): the same function (up to float rounding), 2.25x (x2) and
4x (x4) fewer multiply-adds, no upsampled copy and no gather in the backward pass; it is most of
the decoder's cost on CPUs.
"""

from __future__ import annotations


import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from g3fa_jax.models.blocks import Conv
from g3fa_jax.models.blocks import torch_uniform_init
from g3fa_jax.ops.resize import resize_bilinear, resize_nearest
from g3fa_jax.ops.upsampled_conv import integer_factor, nearest_upsampled_conv3x3


def instance_norm(x: jnp.ndarray, epsilon: float = 1e-5) -> jnp.ndarray:
  """Parameter-free InstanceNorm over H, W of (B, H, W, C), biased variance."""
  mean = jnp.mean(x, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
  return (x - mean) * jnp.reciprocal(jnp.sqrt(var + epsilon))


class ConvVariables(nn.Module):
  """The variables of `Conv(features, 3, 1)` (`kernel` (3, 3, in, out), `bias`), not applied."""
  features: int

  @nn.compact
  def __call__(self, in_features: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    init = torch_uniform_init(in_features * 9)
    return (self.param('kernel', init, (3, 3, in_features, self.features), jnp.float32),
            self.param('bias', init, (self.features,), jnp.float32))


class NearestUpConv3x3(nn.Module):
  """`Conv(features, 3, 1)` applied to `resize_nearest(x, size)`, with the same variables
  (`kernel` (3, 3, in, out), `bias`); computed at x's size when `size` is an integer multiple."""
  features: int

  @nn.compact
  def __call__(self, x: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
    in_features = x.shape[-1]
    init = torch_uniform_init(in_features * 9)
    kernel = self.param('kernel', init, (3, 3, in_features, self.features), jnp.float32)
    bias = self.param('bias', init, (self.features,), jnp.float32)
    factor = integer_factor(x.shape[1:3], size)
    if factor is None:
      x = resize_nearest(x, size)
      factor = 1
    return nearest_upsampled_conv3x3(x, kernel, factor) + bias.astype(x.dtype)


class SPADELayer(nn.Module):
  """x * (1 + gamma(seg)) + beta(seg) on the instance-normalised x; seg resized (nearest) to x."""
  hidden_channel: int = 128

  @nn.compact
  def __call__(self, x: jnp.ndarray, modulation: jnp.ndarray) -> jnp.ndarray:
    normalized = instance_norm(x)
    actv = nn.relu(NearestUpConv3x3(self.hidden_channel, name='mlp_shared_0')(
        modulation, x.shape[1:3]))
    c = x.shape[-1]
    gamma_kernel, gamma_bias = ConvVariables(c, name='mlp_gamma')(actv.shape[-1])
    beta_kernel, beta_bias = ConvVariables(c, name='mlp_beta')(actv.shape[-1])
    # gamma and beta read the same input: one convolution with both kernels side by side.
    both = lax.conv_general_dilated(
        actv, jnp.concatenate([gamma_kernel, beta_kernel], -1).astype(actv.dtype), (1, 1),
        [(1, 1), (1, 1)], dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    both = both + jnp.concatenate([gamma_bias, beta_bias]).astype(actv.dtype)
    return normalized * (1 + both[..., :c]) + both[..., c:]


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
