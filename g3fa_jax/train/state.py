"""`TrainState`: everything that changes during training, as one pytree.

Per network (`kp_detector`, `generator`, `discriminator`, `discriminator2`, `discriminator3`):
its `params`, its other variable collections (`batch_stats` for the keypoint detector and the
generator, `spectral` for the discriminators) and its optax state. The frozen Unsup3D and VGG19
weights are not part of it (see `pretrained.py`).
"""

from __future__ import annotations

from typing import Any, Mapping

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from g3fa_jax.models import networks

TRAINED_NETWORKS = networks.G3FA_NETWORKS
GENERATOR_SIDE = ('kp_detector', 'generator')
DISCRIMINATORS = ('discriminator', 'discriminator2', 'discriminator3')


@flax.struct.dataclass
class TrainState:
  """step: int32 scalar, the number of steps done. params / collections / opt_state: dicts by
  network name. rng: a raw uint32 PRNG key (2,), the run's base key; step k draws from
  `fold_in(rng, k)`."""
  step: jax.Array
  params: dict[str, Any]
  collections: dict[str, Any]
  opt_state: dict[str, Any]
  rng: jax.Array

  def variables(self, name: str) -> dict[str, Any]:
    """The Flax variables of one network: {'params': ..., 'batch_stats' or 'spectral': ...}."""
    return {'params': self.params[name], **self.collections[name]}


def split_variables(variables: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
  """{'params': p, **others} -> (p, others)."""
  variables = dict(variables)
  return variables.pop('params'), variables


def init_train_state(config: ml_collections.ConfigDict, optimizers: Mapping[str, Any],
                     rng: jax.Array) -> TrainState:
  """Freshly initialised networks (each from its own key) and optimiser states, at step 0."""
  init_rng, state_rng = jax.random.split(rng)
  params, collections, opt_state = {}, {}, {}
  for i, name in enumerate(TRAINED_NETWORKS):
    variables = networks.init_variables(name, config, jax.random.fold_in(init_rng, i))
    params[name], collections[name] = split_variables(variables)
    opt_state[name] = optimizers[name].init(params[name])
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, collections=collections,
                    opt_state=opt_state, rng=state_rng)


def network_items(state: TrainState) -> dict[str, Any]:
  """The checkpoint items of the networks: name -> {'params', 'batch_stats' / 'spectral'}."""
  return {name: state.variables(name) for name in TRAINED_NETWORKS}


def step_rng(state: TrainState) -> jax.Array:
  """The key of the step about to run (a pure function of the base key and the step)."""
  return jax.random.fold_in(state.rng, state.step)


def apply_updates(params: Any, grads: Any, opt_state: Any,
                  optimizer: optax.GradientTransformation) -> tuple[Any, Any]:
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state
