"""The training step as the step benchmarks run it: config overrides, state, a toy batch, jit.

`bench_train.py`, `profile_step.py` and `profile_ops.py` time or trace the same thing: the jitted
G3FA step (`g3fa_jax.train.step.train_step`) on a toy batch of the config's shape, with random
frozen weights unless asked otherwise, sharded over the local devices as `run_train.py` shards it
(on one device the shardings change nothing). This module builds it once for all three and defines
no flags, so tests may import it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional

import jax
import ml_collections

from g3fa_jax.data import toy
from g3fa_jax.train import optim
from g3fa_jax.train import pretrained
from g3fa_jax.train import sharding
from g3fa_jax.train import state as state_lib
from g3fa_jax.train import step as step_lib
from g3fa_jax.train import trainer


def override(config: ml_collections.ConfigDict, batch_size: Optional[int] = None,
             image_size: Optional[int] = None, random_weights: bool = True
             ) -> ml_collections.ConfigDict:
  """`config` with the benchmark's global batch and frame size (None: the config's) and, with
  `random_weights`, seeded random VGG19 / Unsup3D weights instead of the files the config names;
  validated as run_train.py validates it (a ValueError names the bad field)."""
  if batch_size:
    config.batch_size = batch_size
  if image_size:
    config.image_size = image_size
  if random_weights:
    config.pretrained.use_random_weights = True
  trainer.validate_config(config)
  return config


@dataclasses.dataclass
class JittedStep:
  """A jitted training step and the arguments it is timed on.

  `step(state, batch, frozen) -> (state, metrics)` donates the state: feed each call the state the
  previous one returned (`run`). `batch` holds (B, H, W, 3) float32 'source' and 'driving' frames
  in [0, 1], B = the global batch.
  """
  step: Any
  state: Any
  batch: dict[str, jax.Array]
  frozen: dict[str, Any]
  batch_size: int
  image_size: int

  def lower(self):
    return self.step.lower(self.state, self.batch, self.frozen)

  def run(self, compiled: Any = None) -> dict[str, jax.Array]:
    """One step with `compiled` (default: the jitted step); keeps the new state, returns the
    metrics (not waited for)."""
    self.state, metrics = (compiled or self.step)(self.state, self.batch, self.frozen)
    return metrics


def jitted_train_step(config: ml_collections.ConfigDict, steps_per_epoch: int = 1000
                      ) -> JittedStep:
  """The step of `config` (already `override`n), its initial state (seed config.seed), a toy batch
  and the frozen variables, sharded over a mesh of the local devices: state and frozen weights
  replicated, the batch split by rows."""
  batch_size, size = int(config.train.batch_size), int(config.image_size)
  mesh = sharding.make_mesh()
  sharding.check_batch_size(batch_size, mesh)
  replicated, rows = sharding.replicated(mesh), sharding.batch_sharded(mesh)
  optimizers = optim.make_optimizers(config, steps_per_epoch=steps_per_epoch)
  frozen = sharding.replicate(pretrained.frozen_variables(config), mesh)
  state = jax.jit(functools.partial(state_lib.init_train_state, config, optimizers),
                  out_shardings=replicated)(jax.random.PRNGKey(config.seed))
  pairs = toy.ToyPairs(seed=0, num_videos=8, image_size=size, batch_size=batch_size,
                       process_index=jax.process_index(), process_count=jax.process_count())
  batch = sharding.global_batch(pairs.local_batch(0), mesh)
  step = jax.jit(
      functools.partial(step_lib.train_step, nets=step_lib.Networks.from_config(config),
                        settings=step_lib.StepSettings.from_config(config),
                        optimizers=optimizers),
      in_shardings=(replicated, rows, replicated), out_shardings=(replicated, replicated),
      donate_argnums=(0,))
  return JittedStep(step=step, state=state, batch=batch, frozen=frozen, batch_size=batch_size,
                    image_size=size)
