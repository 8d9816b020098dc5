"""Animate a portrait with a driving video.

  python -m g3fa_jax.animate --checkpoint DIR --source face.jpg --driving video.mp4 --out out.mp4

The checkpoint is an orbax one: converted from the official .pth
(`python -m g3fa_jax.convert official --checkpoint G3FA.pth --out DIR`) or written by training.
Source and driving are cropped to the face (MTCNN; one stable box over the driving clip) unless
--no-crop; the output has the driving video's frame rate and audio.
"""

from __future__ import annotations

import argparse
import sys

from g3fa_jax.animate import cli_flags
from g3fa_jax.animate import pipeline
from g3fa_jax.animate.errors import AnimateError


def parse_args(argv: list[str] | None = None) -> pipeline.AnimateOptions:
  parser = argparse.ArgumentParser(prog='python -m g3fa_jax.animate', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  cli_flags.add_checkpoint_flag(parser)
  parser.add_argument('--source', required=True,
                      help='source portrait: an image (or a video: its first frame)')
  parser.add_argument('--driving', required=True,
                      help='driving video (mp4, mov, mkv, avi, webm, gif, ...) or frame folder')
  parser.add_argument('--out', required=True, help='output .mp4')
  parser.add_argument('--no-crop', dest='crop', action='store_false',
                      help='use source and driving as they are (already face crops), resized')
  parser.add_argument('--paste-back', action='store_true',
                      help='paste the animated face back into the full source image')
  reference = parser.add_mutually_exclusive_group()
  reference.add_argument('--find-best-frame', action='store_true',
                         help='start from the driving frame whose pose best matches the source '
                              '(animate forward and backward from it)')
  reference.add_argument('--best-frame', type=int, default=None, metavar='N',
                         help='start from driving frame N (0-based), e.g. one found before')
  parser.add_argument('--best-frame-by', choices=('landmarks', 'keypoints'), default='landmarks',
                      help='pose of --find-best-frame: MTCNN face landmarks or model keypoints')
  cli_flags.add_motion_flags(parser)
  parser.add_argument('--side-by-side', action='store_true',
                      help='write source | driving | result (| depth | normal) panels')
  cli_flags.add_inverse_renderer_flag(parser)
  parser.add_argument('--batch-size', type=int, default=4, help='frames per device call')
  parser.add_argument('--max-frames', type=int, default=0, help='use at most this many frames')
  parser.add_argument('--no-audio', dest='audio', action='store_false',
                      help="drop the driving video's audio")
  cli_flags.add_crop_margin_flag(parser)
  parser.add_argument('--quiet', dest='progress', action='store_false', help='no progress bar')
  return pipeline.AnimateOptions(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
  options = parse_args(argv)
  try:  # Orbax logs read-only checkpoint notices as warnings; they are noise here.
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
    absl_logging.set_verbosity(absl_logging.ERROR)
  except ImportError:
    pass
  try:
    result = pipeline.run(options)
  except (AnimateError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  audio = 'with the driving audio' if result.audio_kept else 'no audio'
  print(f'wrote {result.out}: {result.num_frames} frames at {result.fps:g} fps, {audio} '
        f'({result.seconds:.1f} s)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
