"""`Animator`: a keypoint detector and generator restored from a checkpoint, jit-compiled."""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.inference.images import as_image_batch
from g3fa_jax.models import networks


class Animator:
  """Drives source faces with driving frames' keypoints.

  Images are float32 NHWC in [0, 1]; keypoints are (x, y) in [-1, 1].
  """

  def __init__(self, config: ml_collections.ConfigDict, kp_detector_variables: Any,
               generator_variables: Any):
    self.config = config
    self.kp_detector = networks.build_network('kp_detector', config)
    self.generator = networks.build_network('generator', config)
    self.kp_detector_variables = jax.device_put(kp_detector_variables)
    self.generator_variables = jax.device_put(generator_variables)
    self._keypoints = jax.jit(
        lambda variables, images: self.kp_detector.apply(variables, images, train=False))
    self._generate = jax.jit(
        lambda variables, source, kp_source, kp_driving: self.generator.apply(
            variables, source, kp_source, kp_driving, train=False))

  @classmethod
  def from_checkpoint(cls, directory: str | os.PathLike, step: int | None = None) -> 'Animator':
    """Restores the keypoint detector and generator (and their config) from an orbax checkpoint.

    `directory` is a checkpoint root (the latest step is used unless `step` is given) or one step
    folder, as written by `python -m g3fa_jax.convert official` or by training.
    """
    items, meta = ckpt.restore_items(directory, ('kp_detector', 'generator'), step)
    config = ml_collections.ConfigDict(meta['config'])
    variables = {
        name: ckpt.check_against_template(
            items[name], networks.variables_template(name, config), source=f'{directory} [{name}]')
        for name in items}
    return cls(config, variables['kp_detector'], variables['generator'])

  def keypoints(self, images) -> dict[str, jax.Array]:
    """images (B, H, W, 3) in [0, 1] -> {'value': (B, K, 2), 'jacobian': (B, K, 2, 2)}."""
    return self._keypoints(self.kp_detector_variables, jnp.asarray(as_image_batch(images, 'images')))

  def generate(self, source, kp_source: dict, kp_driving: dict) -> dict[str, jax.Array]:
    """The generator's outputs for sources driven from `kp_source` to `kp_driving` (batched)."""
    return self._generate(self.generator_variables, jnp.asarray(as_image_batch(source, 'source')),
                          kp_source, kp_driving)

  def reconstruct(self, source, driving) -> dict[str, np.ndarray]:
    """Each source driven by its driving frame's keypoints (absolute motion).

    Args:
      source: (B, H, W, 3) in [0, 1].
      driving: (B, H, W, 3) in [0, 1], same shape.

    Returns:
      NHWC numpy arrays: `prediction` (B, H, W, 3), `deformed` (B, H, W, 3), `occlusion_map`
      (B, h, w, 1), `mask` (B, h, w, K+1), `sparse_deformed` (B, K+1, h, w, 3), and the keypoints
      `kp_source`, `kp_driving`.
    """
    source = as_image_batch(source, 'source')
    driving = as_image_batch(driving, 'driving')
    if source.shape != driving.shape:
      raise ValueError(f'source {source.shape} and driving {driving.shape} must have one shape')
    kp_source = self.keypoints(source)
    kp_driving = self.keypoints(driving)
    out = dict(self.generate(source, kp_source, kp_driving))
    out['kp_source'], out['kp_driving'] = kp_source, kp_driving
    return jax.tree_util.tree_map(np.asarray, out)
