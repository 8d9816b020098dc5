"""One web-app request: the uploaded portrait and driving video through the CLI's pipeline.

The same `pipeline.run` as `python -m g3fa_jax.animate`, with the same checks; its one-line
errors name the upload by its own file name instead of the server's temporary path.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import time
import uuid
from typing import Callable, Sequence

from g3fa_jax.animate import pipeline
from g3fa_jax.animate.errors import AnimateError
from g3fa_jax.media import paths

# Result folders older than this are removed when a new job starts.
KEEP_RESULTS_SECONDS = 3600.0


@dataclasses.dataclass(frozen=True)
class JobSettings:
  """What the page lets one choose (the CLI flags of the same names).

  Attributes:
    relative: relative motion from the first (or best) driving frame; False: absolute keypoints.
    find_best_frame: start from the driving frame whose pose matches the portrait best.
    paste_back: paste the animated face back into the whole portrait (needs `crop`).
    side_by_side: source | driving | result panels.
    crop: crop portrait and video to the face (off for inputs that are face crops already).
  """
  relative: bool = True
  find_best_frame: bool = False
  paste_back: bool = False
  side_by_side: bool = False
  crop: bool = True


# The CLI flags a pipeline message may suggest, as the page's controls.
_CONTROLS = {'use --no-crop': 'untick "Crop to the face"', '--no-crop': '"Crop to the face" off'}


def page_message(message: str, uploads: Sequence[str | None]) -> str:
  """`message` with each upload's temporary path replaced by its file name, and CLI flags by
  the page's controls."""
  for path in uploads:
    if path:
      message = message.replace(str(path), pathlib.Path(path).name)
  for flag, control in _CONTROLS.items():
    message = message.replace(flag, control)
  return message


def prune_results(workdir: pathlib.Path, max_age: float = KEEP_RESULTS_SECONDS) -> None:
  """Removes result folders of `workdir` older than `max_age` seconds."""
  if not workdir.is_dir():
    return
  now = time.time()
  for job_dir in workdir.iterdir():
    if job_dir.is_dir() and now - job_dir.stat().st_mtime > max_age:
      shutil.rmtree(job_dir, ignore_errors=True)


def run_job(animator, checkpoint: str, portrait: str | None, driving: str | None,
            settings: JobSettings, workdir: str | os.PathLike, inverse_renderer=None,
            max_frames: int = 0,
            on_progress: Callable[[int, int], None] | None = None) -> pipeline.AnimateResult:
  """Animates `portrait` with `driving` into a new folder of `workdir`; returns the result.

  Raises AnimateError with one line for the page: a missing upload, or the pipeline's own message
  (unreadable image or video, no face found, ...) naming the upload by its file name.
  """
  if not portrait:
    raise AnimateError('no portrait: upload an image of a face')
  if not driving:
    raise AnimateError('no driving video: upload one, or record one with the webcam')
  workdir = pathlib.Path(workdir)
  prune_results(workdir)
  out = workdir / uuid.uuid4().hex / 'animation.mp4'
  options = pipeline.AnimateOptions(
      checkpoint=checkpoint, source=str(portrait), driving=str(driving), out=str(out),
      crop=settings.crop, paste_back=settings.paste_back and settings.crop,
      find_best_frame=settings.find_best_frame, relative=settings.relative,
      side_by_side=settings.side_by_side, max_frames=max_frames, progress=False)
  try:
    return pipeline.run(options, animator=animator, inverse_renderer=inverse_renderer,
                        log=lambda _: None, on_progress=on_progress)
  except (AnimateError, paths.OutputPathError, ValueError) as e:
    raise AnimateError(page_message(str(e), (portrait, driving))) from e
