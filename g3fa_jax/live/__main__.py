"""Animate a portrait live: a camera (or a video played as if live) drives it in a window.

  python -m g3fa_jax.live --checkpoint DIR --source face.jpg --camera 0
  python -m g3fa_jax.live --checkpoint DIR --source face.jpg --driving video.mp4 --no-window --out session.mp4

Frames are cropped to the face on a smoothed box (MTCNN every --detect-every frames) and animated
with relative motion from a reference frame: the first one, and again whenever you press r (look
at the camera as the portrait looks, then press r). q or Esc quits. Frames that arrive while the
model is busy are dropped, not queued. The window and --camera need OpenCV
(pip install 'g3fa-jax[live]'); --driving with --no-window does not.
"""

from __future__ import annotations

import argparse
import sys

# OpenCV loads before PyAV (imported below): in the other order OpenCV's Qt window hangs when it
# opens (opencv-python 5.1 with the av 18 wheels, under X11). Without OpenCV, --camera and the
# window say how to install it when asked for.
try:
  import cv2  # pylint: disable=g-import-not-at-top,unused-import
except ImportError:
  pass

from g3fa_jax.animate import cli_flags
from g3fa_jax.animate.errors import AnimateError
from g3fa_jax.live import loop
from g3fa_jax.media import paths


def _camera(value: str) -> int | str:
  return int(value) if value.isdigit() else value


def parse_args(argv: list[str] | None = None
               ) -> tuple[loop.LiveOptions, tuple[str | None, bool]]:
  """(the session's options, (--compile-cache, --no-compile-cache))."""
  parser = argparse.ArgumentParser(prog='python -m g3fa_jax.live', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  cli_flags.add_checkpoint_flag(parser)
  parser.add_argument('--source', required=True,
                      help='source portrait: an image (or a video: its first frame)')
  stream = parser.add_mutually_exclusive_group()
  stream.add_argument('--camera', type=_camera, default=None,
                      help='camera index (default 0 when --driving is not given) or stream URL')
  stream.add_argument('--driving', default=None,
                      help='a video played as if live (for machines without a camera)')
  parser.add_argument('--out', default=None, help='record the session (the view) to this .mp4')
  parser.add_argument('--no-window', dest='window', action='store_false',
                      help='run headless (no OpenCV window)')
  parser.add_argument('--no-crop', dest='crop', action='store_false',
                      help='use the source and the frames whole (already face crops), resized')
  cli_flags.add_motion_flags(parser)
  parser.add_argument('--keys', default='',
                      help="scripted keys for headless runs: 'r@30,q@90' presses r (reference "
                           'frame) at stream frame 30 and q (quit) at frame 90')
  parser.add_argument('--max-frames', type=int, default=0,
                      help='stop after this many stream frames (0: at the end, or on q / Esc)')
  parser.add_argument('--detect-every', type=int, default=5,
                      help='run the face detector on every n-th frame taken')
  parser.add_argument('--smoothing', type=float, default=0.8,
                      help='face box smoothing in [0, 1): weight of the current box per detection')
  cli_flags.add_crop_margin_flag(parser)
  parser.add_argument('--display-height', type=int, default=256,
                      help='height of the view (camera | result) in pixels')
  cli_flags.add_compile_cache_flags(parser)
  args = vars(parser.parse_args(argv))
  cache = (args.pop('compile_cache'), args.pop('no_compile_cache'))
  options = loop.LiveOptions(**args)
  if options.camera is None and options.driving is None:
    options.camera = 0
  return options, cache


def main(argv: list[str] | None = None) -> int:
  options, (cache_dir, no_compile_cache) = parse_args(argv)
  try:  # Orbax logs read-only checkpoint notices as warnings; they are noise here.
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
    absl_logging.set_verbosity(absl_logging.ERROR)
  except ImportError:
    pass
  cli_flags.use_compile_cache(cache_dir, no_compile_cache)
  try:
    stats = loop.run(options)
  except (AnimateError, paths.OutputPathError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  recorded = f'; recorded {stats.out}' if stats.out else ''
  print(f'live: {stats.shown} frames shown, {stats.dropped} of {stats.arrived} dropped while the '
        f'model was busy, {stats.fps:.2f} frames/s, latency {stats.latency_mean * 1000:.0f} ms '
        f'mean / {stats.latency_max * 1000:.0f} ms max{recorded}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
