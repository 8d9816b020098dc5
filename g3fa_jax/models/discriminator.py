"""Pix2Pix-style patch discriminators (official `modules/discriminator.py`) and their ensemble.

G3FA uses three of them with the same architecture: on RGB frames (3 channels), on Unsup3D depth
maps (1 channel) and on Unsup3D normal maps (3 channels). Submodule names mirror the official
PyTorch attributes (`discs.1.down_blocks.0.conv` -> `discs_1/down_blocks_0/conv`), so official
state dicts convert by rule. Keypoint heatmap inputs (`use_kp`) are off in G3FA and not supported.
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

import flax.linen as nn
import jax

from g3fa_jax.models.spectral_norm import SpectralNormConv
from g3fa_jax.models.spectral_norm import torch_conv_bias_init
from g3fa_jax.models.spectral_norm import torch_conv_kernel_init
from g3fa_jax.ops.pool import avg_pool2x2


def _conv(features: int, kernel: int, sn: bool, fan_in: int, name: str) -> nn.Module:
  """An unpadded conv, spectral-normalised or plain, with PyTorch's default init."""
  if sn:
    return SpectralNormConv(features, (kernel, kernel), padding=0, name=name)
  return nn.Conv(features, (kernel, kernel), padding='VALID', kernel_init=torch_conv_kernel_init,
                 bias_init=torch_conv_bias_init(fan_in), name=name)


def _apply_conv(conv: nn.Module, x: jax.Array, train: bool) -> jax.Array:
  return conv(x, train=train) if isinstance(conv, SpectralNormConv) else conv(x)


class DownBlock2d(nn.Module):
  """conv (k x k, no padding) -> [affine InstanceNorm] -> LeakyReLU(0.2) -> [2x2 avg-pool]."""
  features: int
  norm: bool = False
  kernel_size: int = 4
  pool: bool = False
  sn: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """x: (B, H, W, C) -> (B, H', W', features)."""
    fan_in = x.shape[-1] * self.kernel_size ** 2
    out = _apply_conv(_conv(self.features, self.kernel_size, self.sn, fan_in, 'conv'), x, train)
    if self.norm:
      # InstanceNorm2d(affine=True, track_running_stats=False): always per-instance statistics.
      out = nn.InstanceNorm(epsilon=1e-5, use_fast_variance=False, name='norm')(out)
    out = nn.leaky_relu(out, 0.2)
    if self.pool:
      out = avg_pool2x2(out)
    return out


class Discriminator(nn.Module):
  """Patch discriminator: `num_blocks` DownBlock2d then a 1x1 conv to one prediction channel.

  Block i has min(max_features, block_expansion * 2**(i+1)) channels, InstanceNorm on all but the
  first block and 2x2 average pooling on all but the last.
  """
  num_channels: int = 3
  block_expansion: int = 64
  num_blocks: int = 4
  max_features: int = 512
  sn: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> tuple[list[jax.Array], jax.Array]:
    """Scores a batch of maps.

    Args:
      x: (B, H, W, num_channels) input (an RGB image in [0, 1], a depth or a normal map).
      train: run the spectral-norm power iteration (needs a mutable `spectral` collection).

    Returns:
      (feature_maps, prediction_map): the `num_blocks` block outputs (B, h_i, w_i, c_i) and the
      patch map (B, h, w, 1).
    """
    if x.shape[-1] != self.num_channels:
      raise ValueError(f'Discriminator expects {self.num_channels} input channels, got shape '
                       f'{x.shape}')
    feature_maps = []
    out = x
    for i in range(self.num_blocks):
      features = min(self.max_features, self.block_expansion * 2 ** (i + 1))
      block = DownBlock2d(features, norm=i != 0, kernel_size=4, pool=i != self.num_blocks - 1,
                          sn=self.sn, name=f'down_blocks_{i}')
      out = block(out, train=train)
      feature_maps.append(out)
    prediction_map = _apply_conv(_conv(1, 1, self.sn, out.shape[-1], 'conv'), out, train)
    return feature_maps, prediction_map


def scale_key(scale: float) -> str:
  """The official ModuleDict key of a scale: `str(scale).replace('.', '-')` (1 -> '1')."""
  return str(scale).replace('.', '-')


class MultiScaleDiscriminator(nn.Module):
  """One Discriminator per pyramid scale, submodules `discs_<scale_key>` (G3FA: scales [1])."""
  scales: Sequence[float] = (1,)
  num_channels: int = 3
  block_expansion: int = 64
  num_blocks: int = 4
  max_features: int = 512
  sn: bool = False

  def setup(self):
    self.discs = {
        scale_key(s): Discriminator(self.num_channels, self.block_expansion, self.num_blocks,
                                    self.max_features, self.sn)
        for s in self.scales
    }

  def __call__(self, x: Union[jax.Array, Mapping[str, jax.Array]], train: bool = False
               ) -> dict[str, object]:
    """Scores a pyramid.

    Args:
      x: {'prediction_<scale>': (B, H_s, W_s, num_channels)} as the official code, or a single
        (B, H, W, num_channels) array when the only scale is 1.
      train: run the spectral-norm power iteration (needs a mutable `spectral` collection).

    Returns:
      {'feature_maps_<scale>': list of block outputs, 'prediction_map_<scale>': (B, h, w, 1)}.
    """
    if not isinstance(x, Mapping):
      if [str(s) for s in self.scales] != ['1']:
        raise ValueError(f'MultiScaleDiscriminator with scales {list(self.scales)} needs a dict '
                         "{'prediction_<scale>': image}, got a single array")
      x = {'prediction_1': x}
    out = {}
    for key, disc in self.discs.items():
      scale = key.replace('-', '.')
      feature_maps, prediction_map = disc(x['prediction_' + scale], train=train)
      out['feature_maps_' + scale] = feature_maps
      out['prediction_map_' + scale] = prediction_map
    return out


def ensemble_patch_maps(maps_rgb: jax.Array, maps_depth: jax.Array, maps_normal: jax.Array,
                        w_rgb: float, w_depth: float, w_normal: float) -> jax.Array:
  """G3FA's weighted ensemble of the three discriminators' patch maps (same shapes, (B, h, w, 1)).

  Returns (w_rgb * D_rgb + w_depth * D_depth + w_normal * D_normal) / (w_rgb + w_depth + w_normal).
  """
  total = w_rgb + w_depth + w_normal
  return (maps_rgb * w_rgb + maps_depth * w_depth + maps_normal * w_normal) / total
