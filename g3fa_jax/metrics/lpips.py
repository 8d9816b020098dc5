"""LPIPS v0.1 (Zhang et al. 2018), AlexNet and VGG16 variants, as the `lpips` package computes it.

distance(x0, x1) = sum over 5 layers l of mean_{h,w} sum_c w_lc (n0 - n1)^2, where n is the layer's
ReLU feature map normalised to unit length over channels (`x / (|x| + 1e-10)`) and w_l the
package's learned non-negative 1x1 "linear" head. Inputs in [0, 1] are mapped to [-1, 1] (the
package's `normalize=True`) and then shifted and scaled by its ScalingLayer.

Weights: the backbone is torchvision's ImageNet network (`alexnet-owt-7be5be79.pth` /
`vgg16-397923af.pth`: keys `features.<i>.weight|bias`, the classifier is unused) and the heads are
the package's `lpips/weights/v0.1/alex.pth` / `vgg.pth` (keys `lin<k>.model.1.weight`, shape
(1, C_k, 1, 1)). Flax names mirror both: `features_<i>/kernel`, `lin<k>/model_1/kernel`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)
NORM_EPS = 1e-10

# torchvision `features` layers as (index, kind, args): conv (out, kernel, stride, padding), pool
# (kernel, stride); every conv is followed by a ReLU. `taps` are the features indices of the ReLUs
# whose outputs LPIPS compares.
ALEXNET = {
    'convs': {0: (64, 11, 4, 2), 3: (192, 5, 1, 2), 6: (384, 3, 1, 1), 8: (256, 3, 1, 1),
              10: (256, 3, 1, 1)},
    'pools': {2: (3, 2), 5: (3, 2)},
    'taps': (1, 4, 7, 9, 11),
    'channels': (64, 192, 384, 256, 256),
}
VGG16 = {
    'convs': {i: (c, 3, 1, 1) for i, c in ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256),
                                           (12, 256), (14, 256), (17, 512), (19, 512), (21, 512),
                                           (24, 512), (26, 512), (28, 512))},
    'pools': {4: (2, 2), 9: (2, 2), 16: (2, 2), 23: (2, 2)},
    'taps': (3, 8, 15, 22, 29),
    'channels': (64, 128, 256, 512, 512),
}
NETS = {'alex': ALEXNET, 'vgg': VGG16}
# torchvision weight files of the backbones (for messages and the README).
BACKBONE_FILES = {'alex': 'alexnet-owt-7be5be79.pth', 'vgg': 'vgg16-397923af.pth'}


def backbone_features(x: jax.Array, net: str) -> list[jax.Array]:
  """torchvision AlexNet / VGG16 `features` up to the last LPIPS tap: the 5 compared ReLU maps.

  Call inside a compact Flax method: the convs become that module's `features_<i>` submodules
  (the torchvision state dict's names), so one converted tree holds backbone and heads.
  """
  spec = NETS[net]
  outs = []
  for index in range(spec['taps'][-1] + 1):
    if index in spec['convs']:
      features, k, stride, pad = spec['convs'][index]
      x = nn.Conv(features, (k, k), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                  precision=jax.lax.Precision.HIGHEST, name=f'features_{index}')(x)
    elif index in spec['pools']:
      k, stride = spec['pools'][index]
      x = nn.max_pool(x, (k, k), strides=(stride, stride), padding='VALID')
    else:
      x = nn.relu(x)
    if index in spec['taps']:
      outs.append(x)
  return outs


class LinearHead(nn.Module):
  """The package's `NetLinLayer`: (dropout,) bias-free 1x1 conv to one channel (`model.1`)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return nn.Conv(1, (1, 1), use_bias=False, precision=jax.lax.Precision.HIGHEST,
                   name='model_1')(x)


def _normalize(x: jax.Array) -> jax.Array:
  return x / (jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + NORM_EPS)


class Lpips(nn.Module):
  """LPIPS distance between two batches of images.

  Attributes:
    net: 'alex' or 'vgg'.
  """
  net: str = 'alex'

  @nn.compact
  def __call__(self, x0: jax.Array, x1: jax.Array) -> jax.Array:
    """Args: x0, x1: (B, H, W, 3) in [0, 1]. Returns (B,) distances (>= 0 with trained heads)."""
    if self.net not in NETS:
      raise ValueError(f'LPIPS net must be one of {sorted(NETS)}, got {self.net!r}')
    batch = x0.shape[0]
    x = jnp.concatenate([x0, x1], axis=0).astype(jnp.float32)
    x = (2.0 * x - 1.0 - SHIFT) / SCALE
    feats = backbone_features(x, self.net)
    total = jnp.zeros((batch,), jnp.float32)
    for k, f in enumerate(feats):
      diff = jnp.square(_normalize(f[:batch]) - _normalize(f[batch:]))
      total = total + jnp.mean(LinearHead(name=f'lin{k}')(diff), axis=(1, 2, 3))
    return total


# Its converted weights (`python -m g3fa_jax.convert lpips`, restored by `weights`).
NAME = 'lpips'


def make_command(net: str, out: str) -> str:
  """The command that writes LPIPS weights of variant `net` into `out`."""
  heads = {'alex': 'alex.pth', 'vgg': 'vgg.pth'}[net]
  return (f'python -m g3fa_jax.convert lpips --checkpoint '
          f'{BACKBONE_FILES[net]},{heads} --out {out}')


def lpips_template(net: str) -> dict[str, Any]:
  """Shapes of the Flax `Lpips(net)` variables (independent of the image size)."""
  x = jnp.zeros((1, 64, 64, 3), jnp.float32)
  return dict(jax.eval_shape(Lpips(net).init, jax.random.PRNGKey(0), x, x))


def template_from_info(info: ml_collections.ConfigDict) -> dict[str, Any]:
  """The template of the variant stored in the weights' info (`{'net': 'alex' | 'vgg'}`)."""
  return lpips_template(info.net)
