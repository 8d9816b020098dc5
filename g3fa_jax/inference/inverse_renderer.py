"""`InverseRenderer`: the frozen Unsup3D depth network restored from a checkpoint, jit-compiled."""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.inference.images import as_image_batch
from g3fa_jax.models import inverse_renderer
from g3fa_jax.models import networks


class InverseRenderer:
  """Canonical depth and normal maps of face images (Unsup3D, as the official G3FA uses it)."""

  def __init__(self, config: ml_collections.ConfigDict, variables: Any):
    self.config = config
    self.network = networks.build_network('unsup3d', config)
    self.variables = jax.device_put(variables)
    self._depth_and_normal = jax.jit(functools.partial(
        inverse_renderer.unsup3d_depth_and_normal, self.network.apply, cfg=config.unsup3d))

  @classmethod
  def from_checkpoint(cls, directory: str | os.PathLike,
                      step: int | None = None) -> 'InverseRenderer':
    """Restores the depth network written by `python -m g3fa_jax.convert unsup3d` (or training)."""
    variables, meta = ckpt.restore_networks(directory, ('unsup3d',), networks.variables_template,
                                            step=step)
    return cls(ml_collections.ConfigDict(meta['config']), variables['unsup3d'])

  def depth_and_normal(self, images) -> tuple[np.ndarray, np.ndarray]:
    """images (B, H, W, 3) in [0, 1] -> depth (B, H, W, 1) in [min_depth, max_depth] and unit
    normals (B, H, W, 3), at the input size."""
    batch = jnp.asarray(as_image_batch(images, 'images'))
    depth, normal = self._depth_and_normal(self.variables, batch)
    return np.asarray(depth), np.asarray(normal)
