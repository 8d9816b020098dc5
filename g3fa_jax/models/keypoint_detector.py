"""Unsupervised keypoint detector (First Order Motion Model): keypoints and local jacobians."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from g3fa_jax.models.blocks import Conv
from g3fa_jax.models.hourglass import Hourglass
from g3fa_jax.ops.antialias import antialias_downsample
from g3fa_jax.ops.grid import make_coordinate_grid


def _identity_jacobian_bias(num_maps: int):
  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.asarray(np.tile(np.array([1, 0, 0, 1], np.float32), num_maps), dtype).reshape(shape)
  return init


class KeypointDetector(nn.Module):
  """Images (B, H, W, C) in [0, 1] -> {'value': (B, K, 2) (x, y) in [-1, 1],
  'jacobian': (B, K, 2, 2)} (jacobian only with `estimate_jacobian`).

  Heatmaps are a spatial softmax (temperature `temperature`) of a 7x7 conv (padding `pad`) on an
  hourglass run at `scale_factor` of the input; keypoints are the heatmap expectations of the
  coordinate grid and jacobians are heatmap-weighted averages of a second 7x7 conv.
  """
  block_expansion: int
  num_kp: int
  num_channels: int
  max_features: int
  num_blocks: int
  temperature: float
  estimate_jacobian: bool = False
  scale_factor: float = 1.0
  single_jacobian_map: bool = False
  pad: int = 0
  antialias_kernel: tuple[tuple[float, ...], ...] | None = None  # None: the computed Gaussian.

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> dict[str, jnp.ndarray]:
    if x.ndim != 4 or x.shape[-1] != self.num_channels:
      raise ValueError(f'KeypointDetector: expected (B, H, W, {self.num_channels}) images, '
                       f'got {x.shape}')
    if self.scale_factor != 1:
      x = antialias_downsample(x, self.scale_factor, self.antialias_kernel)
    feature_map = Hourglass(self.block_expansion, self.num_blocks, self.max_features,
                            name='predictor')(x, train)
    prediction = Conv(self.num_kp, 7, self.pad, name='kp')(feature_map)
    b, h, w, k = prediction.shape

    logits = prediction.reshape(b, h * w, k) / self.temperature
    heatmap = nn.softmax(logits, axis=1).reshape(b, h, w, k)
    grid = make_coordinate_grid((h, w)).astype(heatmap.dtype)
    value = jnp.sum(heatmap[..., None] * grid[:, :, None, :], axis=(1, 2))
    out = {'value': value}

    if self.estimate_jacobian:
      num_maps = 1 if self.single_jacobian_map else self.num_kp
      jacobian_map = Conv(4 * num_maps, 7, self.pad, kernel_init=nn.initializers.zeros,
                          bias_init=_identity_jacobian_bias(num_maps), name='jacobian')(feature_map)
      jacobian_map = jacobian_map.reshape(b, h, w, num_maps, 4)
      jacobian = jnp.sum(heatmap[..., None] * jacobian_map, axis=(1, 2))
      out['jacobian'] = jacobian.reshape(b, k, 2, 2)
    return out
