"""The networks of a G3FA model, built from a config: by module, and by their official names.

`build_kp_detector`, `build_generator`, `build_discriminator` and `build_unsup3d` make each Flax
module from its part of the config (the official `model_params` schema, `g3fa_jax.model_config`);
`build_network(name, config)` makes them by the names of the official `torch.save` dict:
`kp_detector`, `generator`, `discriminator` (RGB), `discriminator2` (depth), `discriminator3`
(normal); `unsup3d` is the frozen depth network.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from flax.core import FrozenDict

from g3fa_jax.models.discriminator import MultiScaleDiscriminator
from g3fa_jax.models.generator import Generator
from g3fa_jax.models.keypoint_detector import KeypointDetector
from g3fa_jax.models.unsup3d import EDDeconv

G3FA_NETWORKS = ('kp_detector', 'generator', 'discriminator', 'discriminator2', 'discriminator3')
DISCRIMINATOR_CHANNELS = {'discriminator': 3, 'discriminator2': 1, 'discriminator3': 3}

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


def build_network(name: str, config: ml_collections.ConfigDict) -> nn.Module:
  """The Flax module of network `name` from a run config (with `.model` and `.unsup3d`)."""
  if name == 'kp_detector':
    return build_kp_detector(config.model)
  if name == 'generator':
    return build_generator(config.model)
  if name in DISCRIMINATOR_CHANNELS:
    return build_discriminator(config.model, num_channels=DISCRIMINATOR_CHANNELS[name])
  if name == 'unsup3d':
    return build_unsup3d(config.unsup3d)
  raise ValueError(f'unknown network {name!r}; known: {G3FA_NETWORKS + ("unsup3d",)}')


def _init_fn(name: str, module: nn.Module, config: ml_collections.ConfigDict,
             batch: int) -> Callable[[jax.Array], Any]:
  size = int(config.get('image_size', 256))
  num_kp = config.model.common_params.num_kp
  image = jnp.zeros((batch, size, size, 3), jnp.float32)
  if name == 'kp_detector':
    return lambda rng: module.init(rng, image, train=False)
  if name == 'generator':
    kp = {'value': jnp.zeros((batch, num_kp, 2)),
          'jacobian': jnp.broadcast_to(jnp.eye(2), (batch, num_kp, 2, 2))}
    return lambda rng: module.init(rng, image, kp, kp, train=False)
  if name in DISCRIMINATOR_CHANNELS:
    x = jnp.zeros((batch, size, size, DISCRIMINATOR_CHANNELS[name]), jnp.float32)
    return lambda rng: module.init(rng, x, train=False)
  if name == 'unsup3d':
    side = int(config.unsup3d.image_size)
    x = jnp.zeros((batch, side, side, 3), jnp.float32)
    return lambda rng: module.init(rng, x)
  raise ValueError(f'unknown network {name!r}')


def init_variables(name: str, config: ml_collections.ConfigDict, rng: jax.Array,
                   batch: int = 1) -> dict[str, Any]:
  """Freshly initialised variables of network `name` (params and state collections). Pure (it
  may be traced); called eagerly, it runs op by op: `run_once.call_once(init_variables, ...)`
  compiles it as a whole, several times faster on a CPU."""
  module = build_network(name, config)
  return dict(_init_fn(name, module, config, batch)(rng))


def variables_template(name: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Shapes and dtypes of network `name`'s variables, without computing anything."""
  module = build_network(name, config)
  return dict(jax.eval_shape(_init_fn(name, module, config, 1), jax.random.PRNGKey(0)))


def count_params(variables: Any) -> int:
  """Number of trainable parameters: the `params` collection only."""
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(variables['params']))
