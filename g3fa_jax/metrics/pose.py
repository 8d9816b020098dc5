"""Head pose read from an image by a small regressor trained on ground-truth poses.

As AKD reads landmarks with a fixed detector, the pose error of a generated frame is read by a
fixed network: a small CNN trained once on the synthetic training clips' (yaw, pitch, roll), then
applied to generated and to real driving frames (the real frames' error is the floor).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

# Angles are regressed in units of this many degrees (keeps the targets near [-1, 1]).
ANGLE_SCALE = 30.0


class PoseRegressor(nn.Module):
  """(B, H, W, 3) images in [0, 1] -> (B, 3) yaw, pitch, roll in degrees.

  Four stride-2 stages (one more 3x3 convolution in each after the first); the last map is
  flattened, not averaged: the yaw is where the nose and eyes sit within the face, which a mean
  over positions discards. On the synthetic heads (held-out people, same data and 3000 steps) the
  yaw error was 5.3 degrees averaged, 3.5 flattened, 3.0 with the extra convolutions (pitch 2.7,
  2.7, 1.8).
  """
  width: int = 32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images * 2. - 1.
    for i, features in enumerate((self.width, self.width * 2, self.width * 4, self.width * 4)):
      if i > 0:
        x = nn.relu(nn.Conv(features, (3, 3), name=f'conv_{i}_same')(x))
      x = nn.relu(nn.Conv(features, (3, 3), strides=(2, 2), name=f'conv_{i}')(x))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(self.width * 4, name='hidden')(x))
    return nn.Dense(3, name='angles')(x) * ANGLE_SCALE


def pose_errors_degrees(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
  """Mean absolute yaw, pitch and roll errors (degrees) of (N, 3) angle arrays."""
  predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
  if predicted.shape != target.shape or predicted.shape[-1] != 3:
    raise ValueError(f'pose_errors_degrees: predicted {predicted.shape} and target '
                     f'{target.shape} must both be (N, 3)')
  error = np.abs(predicted - target).mean(axis=0)
  return {'yaw': float(error[0]), 'pitch': float(error[1]), 'roll': float(error[2])}


def turn_gains(predicted: np.ndarray, target: np.ndarray, reference: int) -> dict[str, float]:
  """How far a generated clip turns, per angle: the least-squares gain g of the predicted pose
  change on the target one, both taken relative to frame `reference` (relative motion's reference
  frame), so that the reader's constant offset on a face cancels.

  predicted, target: (T, 3) yaw, pitch, roll in degrees. Returns {'yaw', 'pitch', 'roll'}: 1 for
  a clip that turns as far as the target, 0 for one that does not move, < 0 for the wrong way;
  nan for an angle whose target does not change.
  """
  predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
  if predicted.shape != target.shape or predicted.ndim != 2 or predicted.shape[-1] != 3:
    raise ValueError(f'turn_gains: predicted {predicted.shape} and target {target.shape} must '
                     'both be (T, 3)')
  if not 0 <= reference < len(target):
    raise ValueError(f'turn_gains: reference frame {reference} is not in 0..{len(target) - 1}')
  moved, wanted = predicted - predicted[reference], target - target[reference]
  norms = np.sum(wanted ** 2, axis=0)
  gains = np.where(norms > 0, np.sum(moved * wanted, axis=0) / np.maximum(norms, 1e-30), np.nan)
  return {'yaw': float(gains[0]), 'pitch': float(gains[1]), 'roll': float(gains[2])}


def train_pose_regressor(images: np.ndarray, angles: np.ndarray, *, steps: int = 1500,
                         batch_size: int = 32, learning_rate: float = 1e-3, width: int = 32,
                         seed: int = 0) -> dict[str, Any]:
  """Fits a `PoseRegressor(width)` to images (N, H, W, 3) in [0, 1] and their angles (N, 3)
  (degrees) with an L1 loss, Adam and a cosine decay of the learning rate; returns its
  variables."""
  if len(images) != len(angles) or angles.shape[1:] != (3,):
    raise ValueError(f'train_pose_regressor: {len(images)} images for angles {angles.shape}')
  module = PoseRegressor(width)
  rng = jax.random.PRNGKey(seed)
  variables = module.init(rng, jnp.zeros((1,) + images.shape[1:], jnp.float32))
  optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, max(1, steps)))
  opt_state = optimizer.init(variables['params'])

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      return jnp.mean(jnp.abs(module.apply({'params': p}, x) - y)) / ANGLE_SCALE
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params = variables['params']
  order = np.random.default_rng(seed)
  batch_size = min(batch_size, len(images))
  for _ in range(steps):
    idx = order.choice(len(images), batch_size, replace=False)
    params, opt_state, _ = step(params, opt_state, jnp.asarray(images[idx], jnp.float32),
                                jnp.asarray(angles[idx], jnp.float32))
  return {'params': jax.device_get(params)}


def predict_pose(variables: Any, images: np.ndarray, width: int = 32,
                 batch_size: int = 64) -> np.ndarray:
  """(N, 3) yaw, pitch, roll (degrees) of images (N, H, W, 3) in [0, 1]."""
  module = PoseRegressor(width)
  apply = jax.jit(module.apply)
  out = [np.asarray(apply(variables, jnp.asarray(images[i:i + batch_size], jnp.float32)))
         for i in range(0, len(images), batch_size)]
  return np.concatenate(out) if out else np.zeros((0, 3), np.float32)
