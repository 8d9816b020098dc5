"""FOMM hourglass: an encoder of DownBlocks and a decoder of UpBlocks with skip concatenation."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from g3fa_jax.models.blocks import DownBlock2d, UpBlock2d


class Encoder(nn.Module):
  """Returns [x, d_0, ..., d_{n-1}]; block i outputs min(max_features, block_expansion * 2^(i+1))
  channels at 1/2^(i+1) of the input size."""
  block_expansion: int
  num_blocks: int = 3
  max_features: int = 256

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> list[jnp.ndarray]:
    outs = [x]
    for i in range(self.num_blocks):
      features = min(self.max_features, self.block_expansion * (2 ** (i + 1)))
      outs.append(DownBlock2d(features, name=f'down_blocks_{i}')(outs[-1], train))
    return outs


class Decoder(nn.Module):
  """Consumes the encoder's list from the deepest map; outputs block_expansion + C_in channels."""
  block_expansion: int
  num_blocks: int = 3
  max_features: int = 256

  @nn.compact
  def __call__(self, skips: list[jnp.ndarray], train: bool) -> jnp.ndarray:
    skips = list(skips)
    out = skips.pop()
    for j, i in enumerate(reversed(range(self.num_blocks))):
      features = min(self.max_features, self.block_expansion * (2 ** i))
      out = UpBlock2d(features, name=f'up_blocks_{j}')(out, train)
      out = jnp.concatenate([out, skips.pop()], axis=-1)
    return out


class Hourglass(nn.Module):
  """(B, H, W, C_in) -> (B, H, W, block_expansion + C_in); H, W divisible by 2^num_blocks."""
  block_expansion: int
  num_blocks: int = 3
  max_features: int = 256

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    sizes = (self.block_expansion, self.num_blocks, self.max_features)
    skips = Encoder(*sizes, name='encoder')(x, train)
    return Decoder(*sizes, name='decoder')(skips, train)
