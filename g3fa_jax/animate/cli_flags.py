"""Command-line flags shared by the animation, live-mode and web-app commands (and data_prep's
compilation cache), so that each is spelt and explained once."""

from __future__ import annotations

import argparse

from g3fa_jax.animate import crop


def add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
  """Adds the required --checkpoint (the G3FA orbax checkpoint)."""
  parser.add_argument('--checkpoint', required=True,
                      help='orbax checkpoint directory with kp_detector and generator')


def add_inverse_renderer_flag(parser: argparse.ArgumentParser) -> None:
  """Adds --inverse-renderer (an Unsup3D checkpoint for the depth and normal panels)."""
  parser.add_argument('--inverse-renderer', default=None,
                      help='Unsup3D orbax checkpoint (python -m g3fa_jax.convert unsup3d): '
                           'adds depth and normal panels to the side-by-side view')


def add_motion_flags(parser: argparse.ArgumentParser) -> None:
  """Adds --absolute (dest `relative`) and --no-adapt-scale (dest `adapt_movement_scale`)."""
  parser.add_argument('--absolute', dest='relative', action='store_false',
                      help='drive with absolute keypoints instead of relative motion')
  parser.add_argument('--no-adapt-scale', dest='adapt_movement_scale', action='store_false',
                      help='do not scale relative motion by the face size ratio')


def add_crop_margin_flag(parser: argparse.ArgumentParser) -> None:
  """Adds --crop-margin (dest `crop_increase`)."""
  parser.add_argument('--crop-margin', dest='crop_increase', type=float,
                      default=crop.DEFAULT_INCREASE,
                      help='margin around the face box, a fraction of its size per side')


def add_compile_cache_flags(parser: argparse.ArgumentParser,
                            what: str = 'the compiled model and face detector') -> None:
  """Adds --compile-cache DIR and --no-compile-cache (read them with `use_compile_cache`);
  `what` names what the next start then loads instead of compiling."""
  parser.add_argument('--compile-cache', default=None,
                      help=f"JAX's persistent compilation cache, so that the next start loads "
                           f'{what} (default: $JAX_COMPILATION_CACHE_DIR or '
                           '~/.cache/g3fa_jax/jax)')
  parser.add_argument('--no-compile-cache', action='store_true',
                      help='compile everything in every run (no persistent cache)')


def compile_cache_dir(directory: str | None, disabled: bool) -> str | None:
  """The folder of the persistent compilation cache the flags ask for: `directory`, else the
  default (`$JAX_COMPILATION_CACHE_DIR` or ~/.cache/g3fa_jax/jax); None when `disabled`."""
  if disabled:
    return None
  if directory:
    return directory
  # Imported here: parsing these flags loads no jax.
  from g3fa_jax.face import mtcnn  # pylint: disable=g-import-not-at-top
  return str(mtcnn.default_compilation_cache_dir())


def use_compile_cache(directory: str | None, disabled: bool) -> None:
  """Keeps compiled programs in `compile_cache_dir(directory, disabled)`, if any."""
  folder = compile_cache_dir(directory, disabled)
  if folder is not None:
    from g3fa_jax.face import mtcnn  # pylint: disable=g-import-not-at-top
    mtcnn.use_compilation_cache(folder)
