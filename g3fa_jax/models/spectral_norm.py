"""2D convolution with PyTorch's spectral normalisation (`torch.nn.utils.spectral_norm`).

The weight is divided by an estimate of its largest singular value, sigma = u^T W v, where W is the
kernel reshaped to (out, in * kh * kw) in PyTorch's flattening order and u, v are running estimates
of the leading singular vectors kept in the `spectral` collection. In training one power iteration
refreshes u and v before sigma is computed (no gradient flows through u and v); in evaluation the
stored u and v are used as they are.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

SPECTRAL_EPS = 1e-12


def torch_conv_kernel_init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
  """PyTorch's default conv weight init (kaiming_uniform, a=sqrt(5)): U(+-1/sqrt(fan_in))."""
  return nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')(key, shape, dtype)


def torch_conv_bias_init(fan_in: int):
  """PyTorch's default conv bias init: U(+-1/sqrt(fan_in))."""
  bound = 1.0 / float(fan_in) ** 0.5

  def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def l2_normalize(x: jax.Array, eps: float = SPECTRAL_EPS) -> jax.Array:
  """`torch.nn.functional.normalize(x, dim=0, eps)`: x / max(||x||, eps) for a vector."""
  return x / jnp.maximum(jnp.linalg.norm(x), eps)


def kernel_matrix(kernel: jax.Array) -> jax.Array:
  """Flax kernel (kh, kw, in, out) -> PyTorch's `weight.reshape(out, -1)`, i.e. (out, in*kh*kw)."""
  return jnp.transpose(kernel, (3, 2, 0, 1)).reshape(kernel.shape[-1], -1)


def power_iteration(w_mat: jax.Array, u: jax.Array, eps: float = SPECTRAL_EPS
                    ) -> tuple[jax.Array, jax.Array]:
  """One step of PyTorch's power iteration: v = normalize(W^T u), u = normalize(W v)."""
  hi = lax.Precision.HIGHEST
  v = l2_normalize(jnp.dot(w_mat.T, u, precision=hi), eps)
  u = l2_normalize(jnp.dot(w_mat, v, precision=hi), eps)
  return u, v


def spectral_sigma(w_mat: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
  """sigma = u^T W v (a scalar)."""
  hi = lax.Precision.HIGHEST
  return jnp.dot(u, jnp.dot(w_mat, v, precision=hi), precision=hi)


class SpectralNormConv(nn.Module):
  """`spectral_norm(nn.Conv2d(in, features, kernel_size, padding=padding))` on NHWC inputs.

  Variables: params `kernel` (kh, kw, in, out) (= torch `weight_orig`) and `bias` (out,);
  spectral `u` (out,) and `v` (in*kh*kw,) (= torch `weight_u`, `weight_v`).
  With `train=True` (outside `init`) the `spectral` collection must be mutable.
  """
  features: int
  kernel_size: tuple[int, int] = (4, 4)
  padding: int = 0
  eps: float = SPECTRAL_EPS

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """x: (B, H, W, in) -> (B, H', W', features)."""
    kh, kw = self.kernel_size
    cin = x.shape[-1]
    fan_in = cin * kh * kw
    kernel = self.param('kernel', torch_conv_kernel_init, (kh, kw, cin, self.features))
    bias = self.param('bias', torch_conv_bias_init(fan_in), (self.features,))

    def random_unit(shape):
      return l2_normalize(jax.random.normal(self.make_rng('params'), shape), self.eps)

    u_var = self.variable('spectral', 'u', random_unit, (self.features,))
    v_var = self.variable('spectral', 'v', random_unit, (fan_in,))

    w_mat = kernel_matrix(kernel)
    u, v = u_var.value, v_var.value
    if train and not self.is_initializing():
      u, v = power_iteration(lax.stop_gradient(w_mat), u, self.eps)
      u_var.value, v_var.value = u, v
    sigma = spectral_sigma(w_mat, lax.stop_gradient(u), lax.stop_gradient(v))
    weight = kernel / sigma

    pad = ((self.padding, self.padding), (self.padding, self.padding))
    y = lax.conv_general_dilated(x, weight.astype(x.dtype), window_strides=(1, 1), padding=pad,
                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias.astype(x.dtype)
