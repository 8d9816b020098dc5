"""Serve the animation as a web page (Gradio).

  python -m g3fa_jax.app --checkpoint DIR [--port 7860] [--share]

Upload a portrait and a driving video (or record one with the webcam), choose relative or
absolute motion, find-best-frame, paste-back, side-by-side, and get the animated video with its
sound, to play and download. Jobs run one at a time on the device (the others wait in a queue).
Needs Gradio: pip install 'g3fa-jax[app]'.
"""

from __future__ import annotations

import argparse
import sys

from g3fa_jax.animate import cli_flags
from g3fa_jax.animate import pipeline
from g3fa_jax.animate.errors import AnimateError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog='python -m g3fa_jax.app', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  cli_flags.add_checkpoint_flag(parser)
  cli_flags.add_inverse_renderer_flag(parser)
  parser.add_argument('--host', default='127.0.0.1',
                      help='address to listen on (0.0.0.0: reachable from other machines)')
  parser.add_argument('--port', type=int, default=7860, help='port to listen on')
  parser.add_argument('--share', action='store_true',
                      help="also serve through a public gradio.live link (needs the internet)")
  parser.add_argument('--max-frames', type=int, default=0,
                      help='animate at most this many driving frames per job (0: all)')
  parser.add_argument('--workdir', default=None,
                      help='folder for the results (default: a new temporary folder)')
  cli_flags.add_compile_cache_flags(parser)
  return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  try:  # Orbax logs read-only checkpoint notices as warnings; they are noise here.
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
    absl_logging.set_verbosity(absl_logging.ERROR)
  except ImportError:
    pass
  cli_flags.use_compile_cache(args.compile_cache, args.no_compile_cache)
  try:
    from g3fa_jax.app import ui  # pylint: disable=g-import-not-at-top
    ui.import_gradio()  # Before the checkpoint: a missing extra is said first.
    if args.max_frames < 0:
      raise ValueError(f'--max-frames must be >= 0, got {args.max_frames}')
    animator = pipeline.load_animator(args.checkpoint)
    inverse_renderer = (pipeline.load_inverse_renderer(args.inverse_renderer)
                        if args.inverse_renderer else None)
  except (AnimateError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'serving on http://{args.host}:{args.port} (Ctrl+C stops)', flush=True)
  ui.launch(animator, args.checkpoint, args.workdir, inverse_renderer, args.max_frames,
            server_name=args.host, server_port=args.port, share=args.share, quiet=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
