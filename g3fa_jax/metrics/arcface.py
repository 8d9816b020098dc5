"""ArcFace identity embeddings: insightface's `arcface_torch` IResNet (iresnet18/34/50/100/200).

The network takes 112x112 aligned RGB faces mapped to [-1, 1] (`(x - 0.5) / 0.5`) and returns a
`num_features`-d (512) embedding. Architecture (insightface `backbones/iresnet.py`): 3x3 conv ->
BN -> PReLU; four stages of `IBasicBlock`s (BN, conv3x3, BN, PReLU, conv3x3 with the stage's
stride 2 in the first block, BN, + shortcut; the first block's shortcut is a 1x1 conv + BN); BN;
flatten in PyTorch's (C, H, W) order; linear to `num_features`; BatchNorm1d. Every BN has eps 1e-5;
convs are bias-free; dropout (0 in the released models) is the identity at inference.

Flax names mirror `backbone.pth`: `layer3.12.conv2.weight` -> `params/layer3_12/conv2/kernel`,
`layer1.0.downsample.1.running_var` -> `batch_stats/layer1_0/downsample_1/var`, and the PReLU slope
`*.prelu.weight` -> `params/.../prelu/alpha`.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

INPUT_SIZE = 112
BN_EPS = 1e-5
# insightface's depths (layers per stage).
ARCHS = {'r18': (2, 2, 2, 2), 'r34': (3, 4, 6, 3), 'r50': (3, 4, 14, 3),
         'r100': (3, 13, 30, 3), 'r200': (6, 26, 60, 6)}
_HIGHEST = jax.lax.Precision.HIGHEST


class PReLU(nn.Module):
  """PyTorch `nn.PReLU(C)`: max(0, x) + alpha_c min(0, x) with one learned slope per channel."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    alpha = self.param('alpha', nn.initializers.constant(0.25), (x.shape[-1],))
    return jnp.where(x >= 0, x, alpha * x)


def _bn(name: str) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name=name)


def _conv(features: int, kernel: int, stride: int, name: str) -> nn.Conv:
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=False, precision=_HIGHEST, name=name)


class IBasicBlock(nn.Module):
  planes: int
  stride: int = 1
  downsample: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    out = _bn('bn1')(x)
    out = _conv(self.planes, 3, 1, 'conv1')(out)
    out = _bn('bn2')(out)
    out = PReLU(name='prelu')(out)
    out = _conv(self.planes, 3, self.stride, 'conv2')(out)
    out = _bn('bn3')(out)
    if self.downsample:
      x = _bn('downsample_1')(_conv(self.planes, 1, self.stride, 'downsample_0')(x))
    return out + x


class IResNet(nn.Module):
  """insightface's IResNet backbone.

  Attributes:
    layers: blocks per stage, e.g. (3, 4, 14, 3) for iresnet50 (see `ARCHS`).
    num_features: embedding size (512).
  """
  layers: Sequence[int] = ARCHS['r50']
  num_features: int = 512

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (B, 112, 112, 3) in [-1, 1] -> embeddings (B, num_features), not normalised."""
    if x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
      raise ValueError(f'ArcFace expects (B, 112, 112, 3) aligned faces, got {x.shape}')
    x = _conv(64, 3, 1, 'conv1')(x)
    x = _bn('bn1')(x)
    x = PReLU(name='prelu')(x)
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), self.layers), start=1):
      for i in range(blocks):
        # Every stage starts with stride 2, so its first block always has a 1x1 shortcut.
        x = IBasicBlock(planes, stride=2 if i == 0 else 1, downsample=i == 0,
                        name=f'layer{stage}_{i}')(x)
    x = _bn('bn2')(x)
    x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)  # PyTorch's flatten order
    x = nn.Dense(self.num_features, precision=_HIGHEST, name='fc')(x)
    return _bn('features')(x)


def preprocess(faces: jax.Array) -> jax.Array:
  """Aligned faces (B, 112, 112, 3) in [0, 1] -> the network's input in [-1, 1]."""
  return (faces.astype(jnp.float32) - 0.5) / 0.5


def embed(variables, faces: jax.Array, layers: Sequence[int], num_features: int = 512
          ) -> jax.Array:
  """Unit-length ArcFace embeddings of aligned faces (B, 112, 112, 3) in [0, 1] -> (B, d)."""
  e = IResNet(tuple(layers), num_features).apply(variables, preprocess(faces))
  return e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)


# Its converted weights (`python -m g3fa_jax.convert arcface`, restored by `weights`).
NAME = 'arcface'


def make_command(out: str) -> str:
  """The command that writes ArcFace weights into `out`."""
  return f'python -m g3fa_jax.convert arcface --checkpoint backbone.pth --out {out}'


def arcface_template(layers: Sequence[int], num_features: int = 512) -> dict[str, Any]:
  """Shapes of `IResNet(layers, num_features)`'s variables."""
  x = jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  module = IResNet(tuple(layers), num_features)
  return dict(jax.eval_shape(module.init, jax.random.PRNGKey(0), x))


def template_from_info(info: ml_collections.ConfigDict) -> dict[str, Any]:
  """The template of the depth and embedding size stored in the weights' info."""
  return arcface_template(tuple(info.layers), int(info.num_features))
