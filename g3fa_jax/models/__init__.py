"""Flax modules of G3FA and builders from the official-schema model config."""

from __future__ import annotations

import ml_collections
from flax.core import FrozenDict

from g3fa_jax.models.generator import Generator
from g3fa_jax.models.keypoint_detector import KeypointDetector

Kernel = tuple[tuple[float, ...], ...]


def build_kp_detector(model_cfg: ml_collections.ConfigDict,
                      antialias_kernel: Kernel | None = None) -> KeypointDetector:
  """KeypointDetector from `common_params` and `kp_detector_params`.

  `antialias_kernel`: optional (k, k) tuple (see `ops.antialias.kernel_from_buffer`) replacing
  the computed Gaussian, to reproduce a checkpoint whose `down.weight` buffer differs from it.
  """
  common = model_cfg.common_params
  return KeypointDetector(num_kp=common.num_kp, num_channels=common.num_channels,
                          estimate_jacobian=common.estimate_jacobian,
                          antialias_kernel=antialias_kernel,
                          **model_cfg.kp_detector_params.to_dict())


def build_generator(model_cfg: ml_collections.ConfigDict,
                    antialias_kernel: Kernel | None = None) -> Generator:
  """Generator from `common_params` and `generator_params` (see `build_kp_detector` for
  `antialias_kernel`, here used by the dense motion network)."""
  common = model_cfg.common_params
  params = model_cfg.generator_params.to_dict()
  params.pop('num_bottleneck_blocks', None)  # Unused by the official generator.
  # Frozen so that the module stays hashable (jax.jit of its methods hashes it).
  params['dense_motion_params'] = FrozenDict(params['dense_motion_params'])
  params['render_params'] = FrozenDict(params['render_params'])
  return Generator(num_kp=common.num_kp, num_channels=common.num_channels,
                   antialias_kernel=antialias_kernel, **params)


from g3fa_jax.models.discriminator import MultiScaleDiscriminator  # noqa: E402
from g3fa_jax.models.unsup3d import EDDeconv  # noqa: E402


def build_discriminator(model_cfg: ml_collections.ConfigDict,
                        num_channels: int) -> MultiScaleDiscriminator:
  """MultiScaleDiscriminator from `discriminator_params`; num_channels 3 (RGB), 1 (depth) or 3
  (normal)."""
  p = model_cfg.discriminator_params
  return MultiScaleDiscriminator(scales=tuple(p.scales), num_channels=num_channels,
                                 block_expansion=p.block_expansion, num_blocks=p.num_blocks,
                                 max_features=p.max_features, sn=p.sn)


def build_unsup3d(unsup3d_cfg: ml_collections.ConfigDict) -> EDDeconv:
  """The Unsup3D depth net `netD` (EDDeconv, 3 -> 1 channels, no output activation)."""
  return EDDeconv(cin=3, cout=1, zdim=unsup3d_cfg.zdim, nf=unsup3d_cfg.nf, activation=None)
