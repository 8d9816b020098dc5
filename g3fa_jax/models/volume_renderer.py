"""FNeVR face volume renderer: per-pixel stacks of `floor_num` samples, an MLP, volume rendering.

Feature maps are regrouped the official way, `'b (c f) h w -> b h w f c'`: conv channel
`c * floor_num + f` is feature c of floor (sample) f.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from g3fa_jax.models.batch_norm import BatchNorm
from g3fa_jax.models.blocks import Conv, Dense, ResBlock3d


def split_floors(x: jnp.ndarray, floor_num: int) -> jnp.ndarray:
  """(B, H, W, C * F) -> (B, H, W, F, C) with input channel c * F + f -> [f, c]."""
  b, h, w, cf = x.shape
  return jnp.swapaxes(x.reshape(b, h, w, cf // floor_num, floor_num), -1, -2)


class RgbPredictor(nn.Module):
  """(B, H, W, C_in) -> (B, H, W, F, simpled_channel // F) colour features per floor."""
  simpled_channel: int = 128
  floor_num: int = 8

  @nn.compact
  def __call__(self, feature: jnp.ndarray) -> jnp.ndarray:
    feature = Conv(self.simpled_channel, 3, 1, name='down_conv')(feature)
    return split_floors(feature, self.floor_num)


class SigmaPredictor(nn.Module):
  """(B, H, W, C_in) -> (B, H, W, F, simpled_channel // F) density features per floor, refined
  by 3x [ResBlock3d, BatchNorm3d] over the (floor, H, W) volume."""
  simpled_channel: int = 128
  floor_num: int = 8

  @nn.compact
  def __call__(self, feature: jnp.ndarray, train: bool) -> jnp.ndarray:
    heatmap = split_floors(Conv(self.simpled_channel, 3, 1, name='down_conv')(feature),
                           self.floor_num)
    volume = jnp.transpose(heatmap, (0, 3, 1, 2, 4))  # (B, F, H, W, C): depth axis = floors.
    for i in range(0, 6, 2):
      volume = ResBlock3d(3, 1, name=f'res_conv3d_{i}')(volume, train)
      volume = BatchNorm(name=f'res_conv3d_{i + 1}')(volume, train)
    return jnp.transpose(volume, (0, 2, 3, 1, 4))


class MultiHeadNeRFModel(nn.Module):
  """Per-sample MLP: (rgb_in (..., C_rgb), sigma_in (..., C_sigma)) -> (colour (...,
  out_channels), density logit (..., 1)). The official width is out_channels = 256."""
  hidden_size: int = 128
  out_channels: int = 256

  @nn.compact
  def __call__(self, rgb_in: jnp.ndarray, sigma_in: jnp.ndarray):
    hidden = self.hidden_size
    out = nn.relu(Dense(hidden, name='layer1')(sigma_in))
    out = nn.relu(Dense(hidden, name='layer2')(out))
    sigma = Dense(1, name='layer3_1')(out)
    feat_sigma = nn.relu(Dense(hidden // 4, name='layer3_2')(out))
    feat_rgb = nn.relu(Dense(hidden, name='layer3_3')(rgb_in))
    x = jnp.concatenate([feat_sigma, feat_rgb], axis=-1)
    x = nn.relu(Dense(hidden, name='layer4')(x))
    x = nn.relu(Dense(hidden, name='layer5')(x))
    return Dense(self.out_channels, name='layer6')(x), sigma


def volume_render(rgb: jnp.ndarray, sigma: jnp.ndarray) -> jnp.ndarray:
  """Composites floors front to back: (B, H, W, F, C), (B, H, W, F, 1) -> (B, H, W, C).

  As the official code: T_i = exp(-sum_{k<=i} relu(sigma_k)) includes sample i itself, and
  C = sum_i T_i (1 - exp(-relu(sigma_i))) c_i.
  """
  density = nn.relu(sigma)
  transmittance = jnp.exp(-jnp.cumsum(density, axis=3))
  return jnp.sum(transmittance * (1 - jnp.exp(-density)) * rgb, axis=3)


class RenderModel(nn.Module):
  """Warped features (B, H, W, C_in) -> rendered features (B, H, W, output_channels) in (0, 1).

  `output_channels` is not an official field (the official renderer always outputs 256); smaller
  values make narrow generators for small frames possible (configs/synthetic.py).
  """
  simpled_channel_rgb: int = 128
  simpled_channel_sigma: int = 128
  floor_num: int = 8
  hidden_size: int = 128
  output_channels: int = 256

  @nn.compact
  def __call__(self, feature: jnp.ndarray, train: bool) -> jnp.ndarray:
    rgb_in = RgbPredictor(self.simpled_channel_rgb, self.floor_num, name='rgb_predict')(feature)
    sigma_in = SigmaPredictor(self.simpled_channel_sigma, self.floor_num,
                              name='sigma_predict')(feature, train)
    rgb_out, sigma_out = MultiHeadNeRFModel(self.hidden_size, self.output_channels,
                                                  name='nerf_module')(rgb_in, sigma_in)
    return nn.sigmoid(volume_render(rgb_out, sigma_out))
