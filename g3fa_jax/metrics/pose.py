"""Head pose read from an image by a small regressor trained on ground-truth poses.

As AKD reads landmarks with a fixed detector, the pose error of a generated frame is read by a
fixed network: a small CNN trained once on the synthetic training clips' (yaw, pitch, roll), then
applied to generated and to real driving frames (the real frames' error is the floor).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

# Angles are regressed in units of this many degrees (keeps the targets near [-1, 1]).
ANGLE_SCALE = 30.0


class FrameRegressor(nn.Module):
  """(B, H, W, 3) images in [0, 1] -> (B, outputs) quantities read from each frame, in units of
  `scale` (the pose reader's defaults: yaw, pitch, roll in degrees).

  Four stride-2 stages (one more 3x3 convolution in each after the first); the last map is
  flattened, not averaged: the yaw is where the nose and eyes sit within the face, which a mean
  over positions discards. On the synthetic heads (held-out people, same data and 3000 steps) the
  yaw error was 5.3 degrees averaged, 3.5 flattened, 3.0 with the extra convolutions (pitch 2.7,
  2.7, 1.8). `output_name` names the last layer (the pose reader's 'angles').
  """
  width: int = 32
  outputs: int = 3
  scale: float = ANGLE_SCALE
  output_name: str = 'angles'

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images * 2. - 1.
    for i, features in enumerate((self.width, self.width * 2, self.width * 4, self.width * 4)):
      if i > 0:
        x = nn.relu(nn.Conv(features, (3, 3), name=f'conv_{i}_same')(x))
      x = nn.relu(nn.Conv(features, (3, 3), strides=(2, 2), name=f'conv_{i}')(x))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(self.width * 4, name='hidden')(x))
    return nn.Dense(self.outputs, name=self.output_name)(x) * self.scale


# The head-pose reader: (B, H, W, 3) -> (B, 3) yaw, pitch, roll in degrees.
PoseRegressor = FrameRegressor


def pose_errors_degrees(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
  """Mean absolute yaw, pitch and roll errors (degrees) of (N, 3) angle arrays."""
  predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
  if predicted.shape != target.shape or predicted.shape[-1] != 3:
    raise ValueError(f'pose_errors_degrees: predicted {predicted.shape} and target '
                     f'{target.shape} must both be (N, 3)')
  error = np.abs(predicted - target).mean(axis=0)
  return {'yaw': float(error[0]), 'pitch': float(error[1]), 'roll': float(error[2])}


def change_gains(predicted: np.ndarray, target: np.ndarray, reference: int) -> np.ndarray:
  """Per column, the least-squares gain g of the predicted change on the target change, both
  taken relative to row `reference`, so that a reader's constant offset cancels.

  predicted, target: (T, k). Returns (k,): 1 where the prediction changes as much as the target,
  0 where it does not change, < 0 the wrong way; nan where the target does not change.
  """
  predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
  if predicted.shape != target.shape or predicted.ndim != 2:
    raise ValueError(f'change_gains: predicted {predicted.shape} and target {target.shape} '
                     'must both be (T, k)')
  if not 0 <= reference < len(target):
    raise ValueError(f'change_gains: reference frame {reference} is not in '
                     f'0..{len(target) - 1}')
  moved, wanted = predicted - predicted[reference], target - target[reference]
  norms = np.sum(wanted ** 2, axis=0)
  return np.where(norms > 0, np.sum(moved * wanted, axis=0) / np.maximum(norms, 1e-30), np.nan)


def pooled_change_gains(moved: np.ndarray, wanted: np.ndarray) -> np.ndarray:
  """`change_gains` of changes already taken per pair, pooled over the pairs: moved (N, k), the
  generated frame's change from its own source frame, against wanted (N, k), the driving frame's
  true change from that source frame (pairs with different sources, e.g. every held-out
  reconstruction). Returns (k,): 1 all the way, 0 no change, nan where nothing changes."""
  moved, wanted = np.asarray(moved, np.float64), np.asarray(wanted, np.float64)
  if moved.shape != wanted.shape or moved.ndim != 2:
    raise ValueError(f'pooled_change_gains: moved {moved.shape} and wanted {wanted.shape} must '
                     'both be (N, k)')
  zero = np.zeros((1, moved.shape[1]))
  return change_gains(np.concatenate([zero, moved]), np.concatenate([zero, wanted]), 0)


def turn_gains(predicted: np.ndarray, target: np.ndarray, reference: int) -> dict[str, float]:
  """How far a generated clip turns, per angle: `change_gains` of (T, 3) yaw, pitch, roll in
  degrees relative to frame `reference` (relative motion's reference frame). Returns {'yaw',
  'pitch', 'roll'}: 1 for a clip that turns as far as the target, 0 for one that does not move,
  < 0 for the wrong way; nan for an angle whose target does not change.
  """
  if np.shape(predicted)[-1:] != (3,) or np.shape(target)[-1:] != (3,):
    raise ValueError(f'turn_gains: predicted {np.shape(predicted)} and target '
                     f'{np.shape(target)} must both be (T, 3)')
  gains = change_gains(predicted, target, reference)
  return {'yaw': float(gains[0]), 'pitch': float(gains[1]), 'roll': float(gains[2])}


def train_frame_regressor(module: FrameRegressor, images: np.ndarray, targets: np.ndarray, *,
                          steps: int = 1500, batch_size: int = 32, learning_rate: float = 1e-3,
                          seed: int = 0) -> dict[str, Any]:
  """Fits `module` to images (N, H, W, 3) in [0, 1] and their targets (N, module.outputs) with an
  L1 loss (in units of module.scale), Adam and a cosine decay of the learning rate; returns its
  variables."""
  if len(images) != len(targets) or targets.shape[1:] != (module.outputs,):
    raise ValueError(f'train_frame_regressor: {len(images)} images for targets {targets.shape} '
                     f'(want ({len(images)}, {module.outputs}))')
  rng = jax.random.PRNGKey(seed)
  variables = module.init(rng, jnp.zeros((1,) + images.shape[1:], jnp.float32))
  optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, max(1, steps)))
  opt_state = optimizer.init(variables['params'])

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      return jnp.mean(jnp.abs(module.apply({'params': p}, x) - y)) / module.scale
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params = variables['params']
  order = np.random.default_rng(seed)
  batch_size = min(batch_size, len(images))
  for _ in range(steps):
    idx = order.choice(len(images), batch_size, replace=False)
    params, opt_state, _ = step(params, opt_state, jnp.asarray(images[idx], jnp.float32),
                                jnp.asarray(targets[idx], jnp.float32))
  return {'params': jax.device_get(params)}


@functools.lru_cache(maxsize=None)
def _jitted_apply(module: FrameRegressor) -> Callable[..., jax.Array]:
  # One compiled reader per (equal, hashable) module: a fresh jax.jit per call traced and
  # compiled again each time (~0.2 s against ~0.015 s for 8 frames at 64x64 on a CPU).
  return jax.jit(module.apply)


def predict_frames(module: FrameRegressor, variables: Any, images: np.ndarray,
                   batch_size: int = 64) -> np.ndarray:
  """(N, module.outputs) read from images (N, H, W, 3) in [0, 1]."""
  apply = _jitted_apply(module)
  out = [np.asarray(apply(variables, jnp.asarray(images[i:i + batch_size], jnp.float32)))
         for i in range(0, len(images), batch_size)]
  return np.concatenate(out) if out else np.zeros((0, module.outputs), np.float32)


def train_pose_regressor(images: np.ndarray, angles: np.ndarray, *, steps: int = 1500,
                         batch_size: int = 32, learning_rate: float = 1e-3, width: int = 32,
                         seed: int = 0) -> dict[str, Any]:
  """Fits a `PoseRegressor(width)` to images (N, H, W, 3) in [0, 1] and their (yaw, pitch, roll)
  (N, 3) in degrees (`train_frame_regressor`); returns its variables."""
  return train_frame_regressor(PoseRegressor(width), images, np.asarray(angles), steps=steps,
                               batch_size=batch_size, learning_rate=learning_rate, seed=seed)


def predict_pose(variables: Any, images: np.ndarray, width: int = 32,
                 batch_size: int = 64) -> np.ndarray:
  """(N, 3) yaw, pitch, roll (degrees) of images (N, H, W, 3) in [0, 1]."""
  return predict_frames(PoseRegressor(width), variables, images, batch_size)


def cached_reader(path: str | os.PathLike, make: Callable[[], Any]) -> Any:
  """A reader's variables saved at `path` (msgpack), or `make()`'s, saved there first (written
  to a temporary name, then renamed, so an interrupted run leaves no partial file)."""
  path = os.fspath(path)
  if os.path.exists(path):
    with open(path, 'rb') as f:
      return flax.serialization.msgpack_restore(f.read())
  variables = make()
  with open(path + '.tmp', 'wb') as f:
    f.write(flax.serialization.msgpack_serialize(variables))
  os.replace(path + '.tmp', path)
  return variables
