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
  out_channels), density logit (..., 1)). The official width is out_channels = 256.

  `render` composites the floors (`volume_weights`) before the last, linear layer instead of
  after it: the same sum in exact arithmetic, with the (B, H, W, F, out_channels) colours never
  made (8x fewer multiply-adds in that layer and no 256-wide tensor per sample).
  """
  hidden_size: int = 128
  out_channels: int = 256

  def setup(self):
    hidden = self.hidden_size
    self.layer1, self.layer2 = Dense(hidden), Dense(hidden)
    self.layer3_1, self.layer3_2, self.layer3_3 = Dense(1), Dense(hidden // 4), Dense(hidden)
    self.layer4, self.layer5 = Dense(hidden), Dense(hidden)
    self.layer6 = Dense(self.out_channels)

  def _hidden(self, rgb_in: jnp.ndarray, sigma_in: jnp.ndarray):
    """(the last hidden layer (..., hidden_size), density logit (..., 1))."""
    out = nn.relu(self.layer1(sigma_in))
    out = nn.relu(self.layer2(out))
    sigma = self.layer3_1(out)
    feat_sigma = nn.relu(self.layer3_2(out))
    feat_rgb = nn.relu(self.layer3_3(rgb_in))
    x = jnp.concatenate([feat_sigma, feat_rgb], axis=-1)
    x = nn.relu(self.layer4(x))
    return nn.relu(self.layer5(x)), sigma

  def __call__(self, rgb_in: jnp.ndarray, sigma_in: jnp.ndarray):
    x, sigma = self._hidden(rgb_in, sigma_in)
    return self.layer6(x), sigma

  def render(self, rgb_in: jnp.ndarray, sigma_in: jnp.ndarray) -> jnp.ndarray:
    """`volume_render` of `__call__`'s outputs: (B, H, W, F, C) inputs -> (B, H, W,
    out_channels), as sum_i w_i (x_i W + b) = (sum_i w_i x_i) W + (sum_i w_i) b."""
    x, sigma = self._hidden(rgb_in, sigma_in)
    weights = volume_weights(sigma)
    composite = jnp.sum(weights * x, axis=3)
    total = jnp.sum(weights, axis=3)
    out = self.layer6(composite)  # composite W + b; the bias must count total, not once:
    bias = self.layer6.variables['params']['bias'].astype(out.dtype)
    return out + (total - 1) * bias


def volume_weights(sigma: jnp.ndarray) -> jnp.ndarray:
  """Each floor's compositing weight: (B, H, W, F, 1) density logits -> T_i (1 - exp(-relu(
  sigma_i))) with, as the official code, T_i = exp(-sum_{k<=i} relu(sigma_k)) (sample i
  included)."""
  density = nn.relu(sigma)
  return jnp.exp(-jnp.cumsum(density, axis=3)) * (1 - jnp.exp(-density))


def volume_render(rgb: jnp.ndarray, sigma: jnp.ndarray) -> jnp.ndarray:
  """Composites floors front to back: (B, H, W, F, C), (B, H, W, F, 1) -> (B, H, W, C):
  C = sum_i w_i c_i with the weights of `volume_weights`."""
  return jnp.sum(volume_weights(sigma) * rgb, axis=3)


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
    nerf = MultiHeadNeRFModel(self.hidden_size, self.output_channels, name='nerf_module')
    return nn.sigmoid(nerf.render(rgb_in, sigma_in))
