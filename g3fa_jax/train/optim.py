"""Adam per network with the official step schedule (learning rate x0.1 at epoch milestones)."""

from __future__ import annotations

import ml_collections
import optax

from g3fa_jax.train.state import TRAINED_NETWORKS


def learning_rate_schedule(base_lr: float, epoch_milestones, steps_per_epoch: int
                           ) -> optax.Schedule:
  """base_lr, multiplied by 0.1 from the first step of each milestone epoch on.

  Matches `MultiStepLR(milestones, gamma=0.1)` stepped at the end of every epoch: the update with
  0-based index t uses base_lr * 0.1 ** (number of milestones m with t >= m * steps_per_epoch).
  """
  boundaries = {}
  for epoch in epoch_milestones:
    step = int(epoch) * int(steps_per_epoch)
    boundaries[step] = boundaries.get(step, 1.0) * 0.1
  return optax.piecewise_constant_schedule(base_lr, boundaries)


def network_learning_rate(config: ml_collections.ConfigDict, name: str) -> float:
  train = config.train
  if name == 'generator':
    return train.lr_generator
  if name == 'kp_detector':
    return train.lr_kp_detector
  return train.lr_discriminator


def make_optimizers(config: ml_collections.ConfigDict, steps_per_epoch: int
                    ) -> dict[str, optax.GradientTransformation]:
  """One `optax.adam` per trained network (betas `train.adam_b1/b2`, eps `train.adam_eps`)."""
  train = config.train
  optimizers = {}
  for name in TRAINED_NETWORKS:
    schedule = learning_rate_schedule(network_learning_rate(config, name),
                                      train.epoch_milestones, steps_per_epoch)
    optimizers[name] = optax.adam(schedule, b1=train.adam_b1, b2=train.adam_b2,
                                  eps=train.adam_eps)
  return optimizers
