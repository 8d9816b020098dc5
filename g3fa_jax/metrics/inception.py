"""The FID Inception-v3 of pytorch-fid (`pt_inception-2015-12-05-6726825d.pth`), pool3 features.

This is the TensorFlow FID network as pytorch-fid ports it: torchvision's `Inception3` layout
with the FID patches (average pools of the A, C and first E blocks exclude the padding from the
count; the last E block pools with a 3x3 max instead). Every conv is bias-free, followed by
BatchNorm (eps 1e-3) and ReLU. `fid_features` reproduces pytorch-fid's input handling: resize to
299x299 (bilinear, `align_corners=False`, no antialiasing), map [0, 1] to [-1, 1], then the network
to the final average pool: (B, 2048).

Flax names mirror the state dict: `Mixed_6b.branch7x7_2.conv.weight` ->
`params/Mixed_6b/branch7x7_2/conv/kernel`; `...bn.running_mean` -> `batch_stats/.../bn/mean`.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from g3fa_jax.ops import resize

INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPS = 1e-3


def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nn.Module):
  """Bias-free conv, BatchNorm (running statistics), ReLU."""
  features: int
  kernel: int | Sequence[int]
  stride: int = 1
  padding: int | Sequence[int] = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ph, pw = _pair(self.padding)
    x = nn.Conv(self.features, _pair(self.kernel), strides=_pair(self.stride),
                padding=((ph, ph), (pw, pw)), use_bias=False,
                precision=jax.lax.Precision.HIGHEST, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name='bn')(x)
    return nn.relu(x)


def _avg_pool_same(x: jax.Array) -> jax.Array:
  # TensorFlow's average pool: padding not counted (pytorch-fid's `count_include_pad=False`).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_valid(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding='VALID')


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv2d(64, 1, name='branch1x1')(x)
    b5 = BasicConv2d(48, 1, name='branch5x5_1')(x)
    b5 = BasicConv2d(64, 5, padding=2, name='branch5x5_2')(b5)
    b3 = BasicConv2d(64, 1, name='branch3x3dbl_1')(x)
    b3 = BasicConv2d(96, 3, padding=1, name='branch3x3dbl_2')(b3)
    b3 = BasicConv2d(96, 3, padding=1, name='branch3x3dbl_3')(b3)
    bp = BasicConv2d(self.pool_features, 1, name='branch_pool')(_avg_pool_same(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = BasicConv2d(384, 3, stride=2, name='branch3x3')(x)
    bd = BasicConv2d(64, 1, name='branch3x3dbl_1')(x)
    bd = BasicConv2d(96, 3, padding=1, name='branch3x3dbl_2')(bd)
    bd = BasicConv2d(96, 3, stride=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool_valid(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, 1, name='branch1x1')(x)
    b7 = BasicConv2d(c7, 1, name='branch7x7_1')(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = BasicConv2d(c7, 1, name='branch7x7dbl_1')(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    bp = BasicConv2d(192, 1, name='branch_pool')(_avg_pool_same(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = BasicConv2d(192, 1, name='branch3x3_1')(x)
    b3 = BasicConv2d(320, 3, stride=2, name='branch3x3_2')(b3)
    b7 = BasicConv2d(192, 1, name='branch7x7x3_1')(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = BasicConv2d(192, 3, stride=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_valid(x)], axis=-1)


class InceptionE(nn.Module):
  """`max_pool`: the FID network's last block pools with a 3x3 max (stride 1, padding 1)."""
  max_pool: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv2d(320, 1, name='branch1x1')(x)
    b3 = BasicConv2d(384, 1, name='branch3x3_1')(x)
    b3 = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3)],
                         axis=-1)
    bd = BasicConv2d(448, 1, name='branch3x3dbl_1')(x)
    bd = BasicConv2d(384, 3, padding=1, name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd)],
                         axis=-1)
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_same(x)
    bp = BasicConv2d(192, 1, name='branch_pool')(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FidInceptionV3(nn.Module):
  """pytorch-fid's `InceptionV3(output_blocks=[3])` without the input resize/normalisation."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: (B, H, W, 3) in [-1, 1] (H, W >= 75; 299 for FID) -> pool3 features (B, 2048)."""
    x = BasicConv2d(32, 3, stride=2, name='Conv2d_1a_3x3')(x)
    x = BasicConv2d(32, 3, name='Conv2d_2a_3x3')(x)
    x = BasicConv2d(64, 3, padding=1, name='Conv2d_2b_3x3')(x)
    x = _max_pool_valid(x)
    x = BasicConv2d(80, 1, name='Conv2d_3b_1x1')(x)
    x = BasicConv2d(192, 3, name='Conv2d_4a_3x3')(x)
    x = _max_pool_valid(x)
    x = InceptionA(32, name='Mixed_5b')(x)
    x = InceptionA(64, name='Mixed_5c')(x)
    x = InceptionA(64, name='Mixed_5d')(x)
    x = InceptionB(name='Mixed_6a')(x)
    x = InceptionC(128, name='Mixed_6b')(x)
    x = InceptionC(160, name='Mixed_6c')(x)
    x = InceptionC(160, name='Mixed_6d')(x)
    x = InceptionC(192, name='Mixed_6e')(x)
    x = InceptionD(name='Mixed_7a')(x)
    x = InceptionE(name='Mixed_7b')(x)
    x = InceptionE(max_pool=True, name='Mixed_7c')(x)
    return jnp.mean(x, axis=(1, 2))


def preprocess(images: jax.Array) -> jax.Array:
  """pytorch-fid's input handling: (B, H, W, 3) in [0, 1] -> (B, 299, 299, 3) in [-1, 1]."""
  x = images.astype(jnp.float32)
  if x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
    x = resize.resize_bilinear(x, (INPUT_SIZE, INPUT_SIZE), align_corners=False)
  return 2.0 * x - 1.0


def fid_features(variables, images: jax.Array) -> jax.Array:
  """Pool3 features of images (B, H, W, 3) in [0, 1] -> (B, 2048), as pytorch-fid computes them."""
  return FidInceptionV3().apply(variables, preprocess(images))


# Its converted weights (`python -m g3fa_jax.convert inception`, restored by `weights`).
NAME = 'inception'
WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth'


def make_command(out: str) -> str:
  """The command that writes the FID Inception weights into `out`."""
  return f'python -m g3fa_jax.convert inception --checkpoint {WEIGHTS_FILE} --out {out}'


def inception_template() -> dict[str, Any]:
  """Shapes of `FidInceptionV3`'s variables (params and batch_stats)."""
  x = jnp.zeros((1, 75, 75, 3), jnp.float32)
  return dict(jax.eval_shape(FidInceptionV3().init, jax.random.PRNGKey(0), x))


def template_from_info(info: ml_collections.ConfigDict) -> dict[str, Any]:
  """The template (one architecture: the info is not needed)."""
  del info
  return inception_template()
