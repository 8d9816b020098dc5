"""The three MTCNN networks (P-, R-, O-Net) in Flax, NHWC.

Layer names and shapes follow the facenet-pytorch port of MTCNN (Zhang et al. 2016), whose
weights `g3fa_jax/face/mtcnn_weights.npz` holds (see `g3fa_jax/convert/mtcnn.py`). Inputs are RGB
images normalised as `(pixel - 127.5) / 128`.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp


class PReLU(nn.Module):
  """Per-channel parametric ReLU (PyTorch `nn.PReLU(num_parameters=C)`)."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    alpha = self.param('alpha', nn.initializers.constant(0.25), (x.shape[-1],))
    return jnp.where(x >= 0, x, alpha * x)


def max_pool_ceil(x: jnp.ndarray, window: int, stride: int) -> jnp.ndarray:
  """Max pooling with PyTorch's `ceil_mode=True`: a last partial window is kept."""
  pads = []
  for size in x.shape[1:3]:
    out = math.ceil((size - window) / stride) + 1
    pads.append((0, max(0, (out - 1) * stride + window - size)))
  return nn.max_pool(x, (window, window), (stride, stride), padding=pads)


def _conv(features: int, k: int, name: str) -> nn.Conv:
  return nn.Conv(features, (k, k), padding='VALID', name=name)


def _flatten_wh(x: jnp.ndarray) -> jnp.ndarray:
  """Flatten (N, H, W, C) in PyTorch's `permute(0, 3, 2, 1)` order, i.e. (W, H, C)."""
  return jnp.transpose(x, (0, 2, 1, 3)).reshape(x.shape[0], -1)


def pnet_output_size(size: int) -> int:
  """P-Net's output rows (or columns) for `size` input rows: conv 3, ceil-mode pool 2, 2x conv 3."""
  return math.ceil((size - 2) / 2) - 4


class PNet(nn.Module):
  """Proposal net, fully convolutional.

  (N, H, W, 3) -> (box regression (N, H', W', 4), face probability (N, H', W')), stride 2 and
  a 12x12 receptive field per output cell.

  `valid_hw` (2,) int: the images fill only the top-left `valid_hw` of the (zero-padded) input.
  The first (H', W') = pnet_output_size(valid) outputs are then those of the unpadded images:
  padded conv outputs are left out of the ceil-mode pooling, as the unpadded pooling's last
  partial window leaves them out. One compiled program serves every size up to (H, W).
  """

  @nn.compact
  def __call__(self, x: jnp.ndarray, valid_hw: jnp.ndarray | None = None
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    x = PReLU(name='prelu1')(_conv(10, 3, 'conv1')(x))
    if valid_hw is None:
      x = max_pool_ceil(x, 2, 2)
    else:
      conv_hw = valid_hw - 2
      inside = ((jnp.arange(x.shape[1]) < conv_hw[0])[:, None]
                & (jnp.arange(x.shape[2]) < conv_hw[1])[None, :])
      x = max_pool_ceil(jnp.where(inside[None, :, :, None], x, -jnp.inf), 2, 2)
      # Windows wholly in the padding hold -inf: zero them, so that no inf meets a product.
      x = jnp.where(jnp.isfinite(x), x, 0.0)
    x = PReLU(name='prelu2')(_conv(16, 3, 'conv2')(x))
    x = PReLU(name='prelu3')(_conv(32, 3, 'conv3')(x))
    prob = nn.softmax(_conv(2, 1, 'conv4_1')(x), axis=-1)[..., 1]
    reg = _conv(4, 1, 'conv4_2')(x)
    return reg, prob


class RNet(nn.Module):
  """Refinement net: (N, 24, 24, 3) -> (box regression (N, 4), face probability (N,))."""

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    x = PReLU(name='prelu1')(_conv(28, 3, 'conv1')(x))
    x = max_pool_ceil(x, 3, 2)
    x = PReLU(name='prelu2')(_conv(48, 3, 'conv2')(x))
    x = max_pool_ceil(x, 3, 2)
    x = PReLU(name='prelu3')(_conv(64, 2, 'conv3')(x))
    x = PReLU(name='prelu4')(nn.Dense(128, name='dense4')(_flatten_wh(x)))
    prob = nn.softmax(nn.Dense(2, name='dense5_1')(x), axis=-1)[:, 1]
    reg = nn.Dense(4, name='dense5_2')(x)
    return reg, prob


class ONet(nn.Module):
  """Output net: (N, 48, 48, 3) -> (box regression (N, 4), landmarks (N, 10), probability (N,)).

  Landmarks are 5 x coordinates then 5 y coordinates, relative to the input box in [0, 1].
  """

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    x = PReLU(name='prelu1')(_conv(32, 3, 'conv1')(x))
    x = max_pool_ceil(x, 3, 2)
    x = PReLU(name='prelu2')(_conv(64, 3, 'conv2')(x))
    x = max_pool_ceil(x, 3, 2)
    x = PReLU(name='prelu3')(_conv(64, 3, 'conv3')(x))
    x = max_pool_ceil(x, 2, 2)
    x = PReLU(name='prelu4')(_conv(128, 2, 'conv4')(x))
    x = PReLU(name='prelu5')(nn.Dense(256, name='dense5')(_flatten_wh(x)))
    prob = nn.softmax(nn.Dense(2, name='dense6_1')(x), axis=-1)[:, 1]
    reg = nn.Dense(4, name='dense6_2')(x)
    landmarks = nn.Dense(10, name='dense6_3')(x)
    return reg, landmarks, prob
