"""Convolution layers with PyTorch padding and the FOMM building blocks (NHWC / NDHWC)."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from g3fa_jax.models.batch_norm import BatchNorm
from g3fa_jax.ops.pool import avg_pool2x2
from g3fa_jax.ops.resize import upsample_nearest2x

Initializer = Callable[..., jnp.ndarray]


def torch_uniform_init(fan_in: int) -> Initializer:
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for conv/linear weights and biases."""
  bound = 1.0 / math.sqrt(max(fan_in, 1))

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def _tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
  return (value,) * n if isinstance(value, int) else tuple(value)


class Conv(nn.Module):
  """PyTorch `nn.Conv2d` / `nn.Conv3d` (stride 1, symmetric zero padding) on channel-last input.

  The number of spatial dims is `x.ndim - 2`. Variables: `kernel` (*kernel_size, in, out) and
  `bias` (out,). Default init is PyTorch's (kaiming-uniform with a=sqrt(5)).
  """
  features: int
  kernel_size: int | Sequence[int]
  padding: int | Sequence[int] = 0
  kernel_init: Initializer | None = None
  bias_init: Initializer | None = None

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    nd = x.ndim - 2
    ks = _tuple(self.kernel_size, nd)
    pad = _tuple(self.padding, nd)
    in_features = x.shape[-1]
    fan_in = in_features * math.prod(ks)
    kernel = self.param('kernel', self.kernel_init or torch_uniform_init(fan_in),
                        ks + (in_features, self.features), jnp.float32)
    bias = self.param('bias', self.bias_init or torch_uniform_init(fan_in), (self.features,),
                      jnp.float32)
    if nd == 3:
      y = conv3d_as_2d(x, kernel.astype(x.dtype), pad)
    else:
      spatial = 'DHW'[-nd:]
      dn = lax.conv_dimension_numbers(x.shape, kernel.shape,
                                      (f'N{spatial}C', f'{spatial}IO', f'N{spatial}C'))
      y = lax.conv_general_dilated(x, kernel.astype(x.dtype), (1,) * nd, [(p, p) for p in pad],
                                   dimension_numbers=dn)
    return y + bias.astype(x.dtype)


def conv3d_as_2d(x: jnp.ndarray, kernel: jnp.ndarray, padding: Sequence[int]) -> jnp.ndarray:
  """Stride-1 3D convolution (NDHWC, DHWIO kernel, symmetric zero padding) as one 2D convolution.

  The kd depth-shifted copies of x are stacked along the channels and depth is folded into the
  batch, so the 3D kernel becomes a (kh, kw, kd * C_in, C_out) 2D kernel. Same result up to float
  rounding; XLA:CPU runs 2D convolutions far faster than 3D ones (the volume renderer's 3x3x3
  convolutions over 8 floors were about 4x slower forward and backward).
  """
  kd, kh, kw, cin, cout = kernel.shape
  pd, ph, pw = padding
  b, d = x.shape[0], x.shape[1]
  padded = jnp.pad(x, ((0, 0), (pd, pd), (0, 0), (0, 0), (0, 0)))
  out_d = d + 2 * pd - kd + 1
  stacked = jnp.concatenate([padded[:, i:i + out_d] for i in range(kd)], axis=-1)
  stacked = stacked.reshape((b * out_d,) + stacked.shape[2:])
  kernel_2d = jnp.transpose(kernel, (1, 2, 0, 3, 4)).reshape(kh, kw, kd * cin, cout)
  y = lax.conv_general_dilated(stacked, kernel_2d, (1, 1), [(ph, ph), (pw, pw)],
                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y.reshape((b, out_d) + y.shape[1:])


class Dense(nn.Module):
  """PyTorch `nn.Linear` with its default init; `kernel` is (in, out)."""
  features: int

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    init = torch_uniform_init(x.shape[-1])
    kernel = self.param('kernel', init, (x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', init, (self.features,), jnp.float32)
    # As one 2D matmul: XLA:CPU handles a (rows, in) x (in, out) dot better than a batched one.
    flat = x.reshape(-1, x.shape[-1])
    y = jnp.dot(flat, kernel.astype(x.dtype)) + bias.astype(x.dtype)
    return y.reshape(x.shape[:-1] + (self.features,))


def avg_pool2(x: jnp.ndarray) -> jnp.ndarray:
  """`nn.AvgPool2d(2)`: (B, H, W, C) -> (B, H // 2, W // 2, C)."""
  return avg_pool2x2(x)


class SameBlock2d(nn.Module):
  """conv -> BatchNorm -> ReLU, same resolution."""
  features: int
  kernel_size: int | Sequence[int] = 3
  padding: int | Sequence[int] = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = Conv(self.features, self.kernel_size, self.padding, name='conv')(x)
    return nn.relu(BatchNorm(name='norm')(x, train))


class DownBlock2d(nn.Module):
  """conv -> BatchNorm -> ReLU -> 2x2 average pool."""
  features: int
  kernel_size: int | Sequence[int] = 3
  padding: int | Sequence[int] = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = Conv(self.features, self.kernel_size, self.padding, name='conv')(x)
    return avg_pool2(nn.relu(BatchNorm(name='norm')(x, train)))


class UpBlock2d(nn.Module):
  """nearest x2 upsampling -> conv -> BatchNorm -> ReLU."""
  features: int
  kernel_size: int | Sequence[int] = 3
  padding: int | Sequence[int] = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = Conv(self.features, self.kernel_size, self.padding, name='conv')(upsample_nearest2x(x))
    return nn.relu(BatchNorm(name='norm')(x, train))


class ResBlock(nn.Module):
  """Pre-activation residual block (BN, ReLU, conv, BN, ReLU, conv, + x), 2D or 3D."""
  kernel_size: int | Sequence[int] = 3
  padding: int | Sequence[int] = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    c = x.shape[-1]
    out = nn.relu(BatchNorm(name='norm1')(x, train))
    out = Conv(c, self.kernel_size, self.padding, name='conv1')(out)
    out = nn.relu(BatchNorm(name='norm2')(out, train))
    out = Conv(c, self.kernel_size, self.padding, name='conv2')(out)
    return out + x


ResBlock2d = ResBlock  # On (B, H, W, C).
ResBlock3d = ResBlock  # On (B, D, H, W, C).
