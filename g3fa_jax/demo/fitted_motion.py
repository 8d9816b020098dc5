"""A free-form motion fitted to each (source, driving) pair with the driving frame in view.

The best warp of the source towards the driving frame that a motion field of a given resolution
allows, found by gradient descent on the photometric error: a bound on any warp-based animator
at that resolution, not a method (an animator sees the driving frame only through its keypoints).
Set beside the warp by the synthetic heads' true 3D motion (`g3fa_jax.demo.true_motion`), it tells
how much of a turn or of an opening mouth a warp can show at all: the true motion is the head's
rigid motion and carries the source's shading and closed mouth along, which a fitted warp need not.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from g3fa_jax.models.generator import deform_input
from g3fa_jax.ops.pool import avg_pool2x2
from g3fa_jax.synthetic import flow

PYRAMID_LEVELS = 4


def _pyramid_l1(a: jax.Array, b: jax.Array) -> jax.Array:
  """Mean |a - b| summed over up to PYRAMID_LEVELS 2x average-pooled levels (a wide basin for
  the motion); stops early where a side is odd."""
  total = jnp.mean(jnp.abs(a - b))
  for _ in range(PYRAMID_LEVELS - 1):
    if a.shape[1] % 2 or a.shape[2] % 2:
      break
    a, b = avg_pool2x2(a), avg_pool2x2(b)
    total += jnp.mean(jnp.abs(a - b))
  return total


@functools.partial(jax.jit, static_argnames=('grid_size', 'steps', 'learning_rate'))
def _fit(source: jax.Array, driving: jax.Array, grid_size: int, steps: int,
         learning_rate: float) -> jax.Array:
  base = jnp.broadcast_to(jnp.asarray(flow.grid_coordinates(grid_size), jnp.float32)[None],
                          (source.shape[0], grid_size, grid_size, 2))
  optimizer = optax.adam(learning_rate)

  def loss(offset: jax.Array) -> jax.Array:
    return _pyramid_l1(deform_input(source, base + offset, True), driving)

  def update(_, carry):
    offset, state = carry
    updates, state = optimizer.update(jax.grad(loss)(offset), state, offset)
    return optax.apply_updates(offset, updates), state

  offset = jnp.zeros_like(base)
  offset, _ = jax.lax.fori_loop(0, steps, update, (offset, optimizer.init(offset)))
  return base + offset


def fitted_warp(source: np.ndarray, driving: np.ndarray, grid_size: int, steps: int = 300,
                learning_rate: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
  """Each source warped by a motion field fitted to take it to its driving frame (a local
  optimum of the pyramid L1, found from zero motion).

  Args:
    source, driving: (B, S, S, 3) frames in [0, 1].
    grid_size: the motion field's side g (the dense motion's is S * its scale_factor); the field
      is resized bilinearly to S x S for the warp, as the generator's is (align_corners=True).
    steps, learning_rate: Adam's.

  Returns:
    (warped (B, S, S, 3) in [0, 1], the sampling grid (B, g, g, 2) in [-1, 1], x then y).
  """
  source = jnp.asarray(source, jnp.float32)
  grid = _fit(source, jnp.asarray(driving, jnp.float32), int(grid_size), int(steps),
              float(learning_rate))
  return np.asarray(deform_input(source, grid, True)), np.asarray(grid)
