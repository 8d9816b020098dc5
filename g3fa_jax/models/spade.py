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
  """(B, h, w, C) -> (B, 4h, 4w, 3) image in (0, 1); channels C -> C/4 -> C/16 -> C/16.

  `mid_channel` is the width of the segmentation map and of every SPADE layer's hidden
  convolution (128 in the official decoder, where both are fixed).
  """
  mid_channel: int = 128

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    c = x.shape[-1]
    seg = nn.relu(Conv(self.mid_channel, 3, 1, name='seg_conv_0')(x))
    x = SPADEBlock(c // 4, self.mid_channel, name='SPADE_0')(x, seg)
    x = _upsample_bilinear2x(x)
    x = SPADEBlock(c // 16, self.mid_channel, name='SPADE_1')(x, seg)
    x = _upsample_bilinear2x(x)
    x = SPADEBlock(c // 16, self.mid_channel, name='SPADE_2')(x, seg)
    x = SPADEBlock(c // 16, self.mid_channel, name='SPADE_3')(x, seg)
    return nn.sigmoid(Conv(3, 7, 3, name='final_0')(x))
