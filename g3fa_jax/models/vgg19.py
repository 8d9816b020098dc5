"""VGG19 feature extractor for the perceptual loss (official `modules/model.py` `Vgg19`).

The input is ImageNet-normalised and run through torchvision's `vgg19().features` up to relu5_1;
the outputs are relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1. Conv submodules are named after
their index in torchvision's `features` Sequential (`features.28.weight` -> `features_28/kernel`),
so torchvision's ImageNet state dict converts by the project's rule. The last three convs of the
network (features 30, 32, 34) come after relu5_1 and are not built.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from g3fa_jax.ops.pool import max_pool2x2

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

# (torchvision `features` index, output channels) of each 3x3 conv up to relu5_1; every other
# index up to 29 is a ReLU, except the 2x2 max-pools in `_POOLS`.
VGG19_CONVS = ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256), (12, 256), (14, 256), (16, 256),
               (19, 512), (21, 512), (23, 512), (25, 512), (28, 512))
# torchvision `features` indices of the max-pools.
_POOLS = frozenset((4, 9, 18, 27))
# Last features index of each output (the ReLU after conv 0, 5, 10, 19, 28).
_OUTPUT_AFTER = (1, 6, 11, 20, 29)
# Every conv of torchvision's vgg19 `features` (the converter ignores the ones not built here).
TORCHVISION_VGG19_CONVS = VGG19_CONVS + ((30, 512), (32, 512), (34, 512))


class Vgg19(nn.Module):
  """relu1_1 .. relu5_1 of torchvision's VGG19 on ImageNet-normalised input (frozen in training).

  Attributes:
    num_outputs: how many of the five maps to compute (1..5); the network stops after the last
      one, so a perceptual loss whose deeper weights are zero skips the deep convolutions. The
      first `num_outputs` maps equal those of the full network, and the parameters are a subset
      (a converted full VGG19 checkpoint restores into any of them).
  """
  num_outputs: int = len(_OUTPUT_AFTER)

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    """Features of a batch of images.

    Args:
      x: (B, H, W, 3) RGB images in [0, 1].

    Returns:
      The first `num_outputs` of the five maps: (B, H, W, 64), (B, H/2, W/2, 128), (B, H/4, W/4, 256), (B, H/8, W/8, 512),
      (B, H/16, W/16, 512) (sizes floored at each pool).
    """
    if x.shape[-1] != 3:
      raise ValueError(f'Vgg19 expects RGB input (B, H, W, 3), got shape {x.shape}')
    if not 1 <= self.num_outputs <= len(_OUTPUT_AFTER):
      raise ValueError(f'Vgg19.num_outputs={self.num_outputs}: use 1..{len(_OUTPUT_AFTER)}')
    out = (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(IMAGENET_STD, x.dtype)
    channels = dict(VGG19_CONVS)
    features = []
    for index in range(_OUTPUT_AFTER[self.num_outputs - 1] + 1):
      if index in channels:
        out = nn.Conv(channels[index], (3, 3), padding=((1, 1), (1, 1)),
                      name=f'features_{index}')(out)
      elif index in _POOLS:
        out = max_pool2x2(out)
      else:
        out = nn.relu(out)
      if index in _OUTPUT_AFTER:
        features.append(out)
    return features


def vgg19_template() -> dict[str, Any]:
  """Shapes of the Flax `Vgg19` variables (independent of the image size)."""
  x = jnp.zeros((1, 32, 32, 3), jnp.float32)
  return dict(jax.eval_shape(Vgg19().init, jax.random.PRNGKey(0), x))
