"""Initialisers compiled as code that runs once: the same variables as the usual compilation, to
float rounding. (The trainer's initial state goes through `compile_for_one_call` in every training
test.)"""

from __future__ import annotations

import functools

import jax
import numpy as np

from g3fa_jax import model_config
from g3fa_jax.models import networks
from g3fa_jax.ops import run_once


def _close(a, b) -> None:
  leaves_a, tree_a = jax.tree_util.tree_flatten(a)
  leaves_b, tree_b = jax.tree_util.tree_flatten(b)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    assert x.shape == y.shape and x.dtype == y.dtype
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)


def test_call_once_gives_the_jitted_values():
  config = model_config.load_config('configs/tiny.py')
  rng = jax.random.PRNGKey(3)
  init = functools.partial(networks.init_variables, 'generator', config)
  once = run_once.call_once(init, rng)
  _close(once, jax.jit(init)(rng))
  # Real random draws: another key gives other values (the executable takes any key).
  other = run_once.compile_for_one_call(jax.jit(init), rng)(jax.random.PRNGKey(4))
  kernel = once['params']['decoder']['final_0']['kernel']
  assert float(np.std(kernel)) > 0
  assert not np.allclose(kernel, other['params']['decoder']['final_0']['kernel'])
