"""BatchNorm with PyTorch semantics (`nn.BatchNorm2d/3d`, affine, tracked running stats).

Differences from `flax.linen.BatchNorm` that matter for checkpoint parity: the running variance
is updated with the UNBIASED batch variance (n / (n - 1)), and the momentum is PyTorch's
(new = (1 - momentum) * old + momentum * batch).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn
from jax import lax


class BatchNorm(nn.Module):
  """Normalises over every axis but the last (channels), for (B, H, W, C) or (B, D, H, W, C).

  Variables: params `scale`, `bias` (C,); batch_stats `mean`, `var` (C,).
  With `train=True` it normalises with the batch mean and biased variance and, unless
  initialising, updates the running stats (needs `mutable=['batch_stats']`).
  """
  momentum: float = 0.1
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    c = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    running_mean = self.variable('batch_stats', 'mean', lambda: jnp.zeros((c,), jnp.float32))
    running_var = self.variable('batch_stats', 'var', lambda: jnp.ones((c,), jnp.float32))
    axes = tuple(range(x.ndim - 1))
    if train:
      mean = jnp.mean(x, axis=axes)
      var = jnp.mean(jnp.square(x - mean), axis=axes)
      if not self.is_initializing():
        n = x.size // c
        unbiased = var * (n / max(n - 1, 1))
        m = self.momentum
        running_mean.value = (1 - m) * running_mean.value + m * lax.stop_gradient(mean)
        running_var.value = (1 - m) * running_var.value + m * lax.stop_gradient(unbiased)
    else:
      mean, var = running_mean.value, running_var.value
    inv = lax.rsqrt(var + self.epsilon)
    return (x - mean) * (inv * scale) + bias
