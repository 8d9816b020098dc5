"""The persistent compilation cache flags of the interactive commands (live mode, web app)."""

from __future__ import annotations

import argparse

from g3fa_jax.face import mtcnn


def add_compile_cache_flags(parser: argparse.ArgumentParser) -> None:
  """Adds --compile-cache DIR and --no-compile-cache (read them with `use_compile_cache`)."""
  parser.add_argument('--compile-cache', default=None,
                      help="JAX's persistent compilation cache, so that the next start loads the "
                           'compiled model and face detector (default: $JAX_COMPILATION_CACHE_DIR '
                           'or ~/.cache/g3fa_jax/jax)')
  parser.add_argument('--no-compile-cache', action='store_true',
                      help='compile everything in every run (no persistent cache)')


def use_compile_cache(directory: str | None, disabled: bool) -> None:
  """Keeps compiled programs in `directory` (default folder when None) unless `disabled`."""
  if not disabled:  # Compiled programs are kept: the next start loads them.
    mtcnn.use_compilation_cache(directory or mtcnn.default_compilation_cache_dir())
