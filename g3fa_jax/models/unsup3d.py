"""Unsup3D's `EDDeconv` encoder-decoder (the canonical-depth network `netD`), frozen in G3FA.

Submodules are named `network_<i>` after the index i of the layer in the official
`nn.Sequential` (`network.11.weight` -> `network_11/kernel`); ReLU / LeakyReLU / Upsample entries
hold no parameters and keep their indices unused. Transposed convolutions store their kernel as
(kh, kw, in, out) with in/out those of the transposed conv (torch weight (in, out, kh, kw)
transposed by (2, 3, 0, 1)); their torch module paths are `UNSUP3D_TRANSPOSED_CONVS`.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from g3fa_jax.models.spectral_norm import torch_conv_kernel_init
from g3fa_jax.ops.resize import upsample_nearest2x

# Torch module paths of the ConvTranspose2d layers, for `state_dict_to_variables(transposed_convs=)`.
UNSUP3D_TRANSPOSED_CONVS = ('network.13', 'network.17', 'network.23', 'network.29')

_DIMS = ('NHWC', 'HWIO', 'NHWC')


class Conv2d(nn.Module):
  """Bias-free `nn.Conv2d(in, features, k, stride, padding)` on NHWC; kernel (k, k, in, out)."""
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, p = self.kernel_size, self.padding
    kernel = self.param('kernel', torch_conv_kernel_init, (k, k, x.shape[-1], self.features))
    return lax.conv_general_dilated(x, kernel.astype(x.dtype), (self.stride, self.stride),
                                    ((p, p), (p, p)), dimension_numbers=_DIMS)


class ConvTranspose2d(nn.Module):
  """Bias-free `nn.ConvTranspose2d(in, features, k, stride, padding)` on NHWC.

  Computed as a stride-1 convolution of the input dilated by `stride`, zero-padded by k-1-padding
  on each side, with the kernel flipped in both spatial axes. Output size (H-1)*s - 2p + k.
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, s = self.kernel_size, self.stride
    kernel = self.param('kernel', torch_conv_kernel_init, (k, k, x.shape[-1], self.features))
    q = k - 1 - self.padding
    flipped = kernel[::-1, ::-1].astype(x.dtype)
    return lax.conv_general_dilated(x, flipped, (1, 1), ((q, q), (q, q)), lhs_dilation=(s, s),
                                    dimension_numbers=_DIMS)


def _group_norm(groups: int, name: str) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=groups, epsilon=1e-5, use_fast_variance=False, name=name)


class EDDeconv(nn.Module):
  """Unsup3D encoder-decoder: (B, 64, 64, cin) -> (B, 64, 64, cout).

  Encoder: four stride-2 4x4 convs (GroupNorm + LeakyReLU 0.2, no norm on the fourth) and a 4x4
  conv to a (1, 1, zdim) code + ReLU. Decoder: 4x4 transposed conv to 4x4, then three
  [transposed conv x2, GroupNorm, ReLU, 3x3 conv, GroupNorm, ReLU] stages to 32x32, nearest x2 to
  64x64, 3x3 and 5x5 conv stages and a final 5x5 conv to `cout` channels. `activation` 'tanh' or
  None (G3FA's depth net uses None).
  """
  cin: int = 3
  cout: int = 1
  zdim: int = 128
  nf: int = 64
  activation: Optional[str] = 'tanh'

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (B, 64, 64, cin), in [-1, 1] for the depth net -> (B, 64, 64, cout)."""
    if x.shape[-1] != self.cin:
      raise ValueError(f'EDDeconv expects {self.cin} input channels, got shape {x.shape}')
    nf = self.nf
    lrelu = lambda h: nn.leaky_relu(h, 0.2)
    relu = nn.relu
    h = x
    # Encoder.
    h = lrelu(_group_norm(16, 'network_1')(Conv2d(nf, 4, 2, 1, name='network_0')(h)))
    h = lrelu(_group_norm(32, 'network_4')(Conv2d(nf * 2, 4, 2, 1, name='network_3')(h)))
    h = lrelu(_group_norm(64, 'network_7')(Conv2d(nf * 4, 4, 2, 1, name='network_6')(h)))
    h = lrelu(Conv2d(nf * 8, 4, 2, 1, name='network_9')(h))
    h = relu(Conv2d(self.zdim, 4, 1, 0, name='network_11')(h))
    # Decoder.
    h = relu(ConvTranspose2d(nf * 8, 4, 1, 0, name='network_13')(h))
    h = relu(Conv2d(nf * 8, 3, 1, 1, name='network_15')(h))
    h = relu(_group_norm(64, 'network_18')(ConvTranspose2d(nf * 4, 4, 2, 1, name='network_17')(h)))
    h = relu(_group_norm(64, 'network_21')(Conv2d(nf * 4, 3, 1, 1, name='network_20')(h)))
    h = relu(_group_norm(32, 'network_24')(ConvTranspose2d(nf * 2, 4, 2, 1, name='network_23')(h)))
    h = relu(_group_norm(32, 'network_27')(Conv2d(nf * 2, 3, 1, 1, name='network_26')(h)))
    h = relu(_group_norm(16, 'network_30')(ConvTranspose2d(nf, 4, 2, 1, name='network_29')(h)))
    h = relu(_group_norm(16, 'network_33')(Conv2d(nf, 3, 1, 1, name='network_32')(h)))
    h = upsample_nearest2x(h)  # network.35
    h = relu(_group_norm(16, 'network_37')(Conv2d(nf, 3, 1, 1, name='network_36')(h)))
    h = relu(_group_norm(16, 'network_40')(Conv2d(nf, 5, 1, 2, name='network_39')(h)))
    h = Conv2d(self.cout, 5, 1, 2, name='network_42')(h)
    if self.activation == 'tanh':
      h = jnp.tanh(h)
    elif self.activation is not None:
      raise ValueError(f"EDDeconv activation must be 'tanh' or None, got {self.activation!r}")
    return h
