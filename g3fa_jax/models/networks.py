"""The networks of a G3FA model by their official checkpoint names, built from a config.

`kp_detector`, `generator`, `discriminator` (RGB), `discriminator2` (depth), `discriminator3`
(normal) are the names of the official `torch.save` dict; `unsup3d` is the frozen depth network.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from g3fa_jax import models

G3FA_NETWORKS = ('kp_detector', 'generator', 'discriminator', 'discriminator2', 'discriminator3')
DISCRIMINATOR_CHANNELS = {'discriminator': 3, 'discriminator2': 1, 'discriminator3': 3}


def build_network(name: str, config: ml_collections.ConfigDict) -> nn.Module:
  """The Flax module of network `name` from a run config (with `.model` and `.unsup3d`)."""
  if name == 'kp_detector':
    return models.build_kp_detector(config.model)
  if name == 'generator':
    return models.build_generator(config.model)
  if name in DISCRIMINATOR_CHANNELS:
    return models.build_discriminator(config.model, num_channels=DISCRIMINATOR_CHANNELS[name])
  if name == 'unsup3d':
    return models.build_unsup3d(config.unsup3d)
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
  """Freshly initialised variables of network `name` (params and state collections)."""
  module = build_network(name, config)
  return dict(_init_fn(name, module, config, batch)(rng))


def variables_template(name: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Shapes and dtypes of network `name`'s variables, without computing anything."""
  module = build_network(name, config)
  return dict(jax.eval_shape(_init_fn(name, module, config, 1), jax.random.PRNGKey(0)))


def count_params(variables: Any) -> int:
  """Number of trainable parameters: the `params` collection only."""
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(variables['params']))
