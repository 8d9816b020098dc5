"""Compiling functions that run once (initialisers) without XLA's expensive CPU optimisations.

On a CPU, XLA compiles a network's initialiser (every parameter's threefry random draw, unrolled)
for tens of seconds with full LLVM optimisation, to run it once in a fraction of a second. With
the backend's optimisation level 0 and LLVM's expensive passes off it compiles in about half the
time (the synthetic recipe's whole training state: 47 s -> 18 s on a 2-core EPYC); the values
are the same up to float rounding (1 ulp), and the step functions that run thousands of times
keep the full optimisation. Other backends compile as usual.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

# XLA debug options for code that runs once; CPU only (other backends compile as usual).
CPU_ONCE_OPTIONS = {'xla_backend_optimization_level': '0',
                    'xla_llvm_disable_expensive_passes': 'True'}


def compile_for_one_call(jitted: Any, *args: Any) -> Callable[..., Any]:
  """The executable of `jitted` (a `jax.jit` function) for these arguments, compiled cheaply on
  a CPU; call it with the same arguments."""
  lowered = jitted.lower(*args)
  if jax.default_backend() == 'cpu':
    return lowered.compile(compiler_options=CPU_ONCE_OPTIONS)
  return lowered.compile()


def call_once(fn: Callable[..., Any], *args: Any) -> Any:
  """`fn(*args)` (arrays in, arrays out) jitted and compiled cheaply (`compile_for_one_call`)."""
  jitted = jax.jit(fn)
  return compile_for_one_call(jitted, *args)(*args)
