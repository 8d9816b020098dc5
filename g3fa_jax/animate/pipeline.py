"""The whole animation job, file to file: what `python -m g3fa_jax.animate` and the notebook run.

  source image ──crop──┐
                        ├─> Animator.iter_animation (batched on the device) ─> [paste back]
  driving video ─crop──┘                                    [side by side | depth | normal]
                                                                   └─> mp4 (+ driving audio)
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Callable

import numpy as np

from g3fa_jax.animate import best_frame as best_frame_lib
from g3fa_jax.animate import crop as crop_lib
from g3fa_jax.animate import side_by_side
from g3fa_jax.animate import video
from g3fa_jax.animate.errors import CheckpointKindError
from g3fa_jax.checkpoint import CheckpointMismatchError
from g3fa_jax.media import paths


@dataclasses.dataclass
class AnimateOptions:
  """One animation job (the CLI flags).

  Attributes:
    checkpoint: orbax checkpoint with `kp_detector` and `generator`.
    source: the portrait (an image, or a video whose first frame is used).
    driving: the driving video (or a folder of frames, or one image).
    out: the output mp4.
    crop: crop source and driving to the face (else they are resized whole).
    paste_back: paste the animated face into the full source frame (with crop).
    find_best_frame: relative motion from the driving frame whose pose best matches the source.
    best_frame: relative motion from this driving frame (0-based; FOMM's `--best_frame`), e.g.
      one found before; excludes `find_best_frame`. None: frame 0, or the one found.
    best_frame_by: 'landmarks' (MTCNN's 5 face landmarks) or 'keypoints' (the model's).
    relative: relative motion (FOMM); False: absolute driving keypoints.
    adapt_movement_scale: scale relative motion by the keypoint hull areas.
    side_by_side: write source | driving | result (| depth | normal) panels.
    inverse_renderer: Unsup3D checkpoint; adds depth and normal panels of the result.
    batch_size: frames generated per device call.
    max_frames: use at most this many driving frames (0: all).
    audio: keep the driving video's audio track.
    crop_increase: margin around the face box, a fraction of its size on every side.
    detect_samples: about this many driving frames are searched for the face box.
    progress: show a progress bar (on stderr).
  """
  checkpoint: str
  source: str
  driving: str
  out: str
  crop: bool = True
  paste_back: bool = False
  find_best_frame: bool = False
  best_frame: int | None = None
  best_frame_by: str = 'landmarks'
  relative: bool = True
  adapt_movement_scale: bool = True
  side_by_side: bool = False
  inverse_renderer: str | None = None
  batch_size: int = 4
  max_frames: int = 0
  audio: bool = True
  crop_increase: float = crop_lib.DEFAULT_INCREASE
  detect_samples: int = 32
  progress: bool = True


@dataclasses.dataclass(frozen=True)
class AnimateResult:
  out: str
  num_frames: int
  fps: float
  audio_kept: bool
  initial_frame: int
  seconds: float


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def load_animator(checkpoint: str | os.PathLike):
  """`Animator.from_checkpoint`, its failures as one-line CheckpointKindError."""
  from g3fa_jax.inference.animator import Animator  # pylint: disable=g-import-not-at-top
  if os.path.isfile(checkpoint):
    raise CheckpointKindError(
        f'--checkpoint: {checkpoint} is a file, not an orbax checkpoint directory; convert an '
        f'official .pth first: python -m g3fa_jax.convert official --checkpoint {checkpoint} '
        '--out DIR')
  try:
    return Animator.from_checkpoint(checkpoint)
  except (CheckpointMismatchError, FileNotFoundError, ValueError) as e:
    raise CheckpointKindError(f'--checkpoint: {e}') from e


def load_inverse_renderer(checkpoint: str | os.PathLike):
  """`InverseRenderer.from_checkpoint`, its failures as one-line CheckpointKindError."""
  from g3fa_jax.inference.inverse_renderer import InverseRenderer  # pylint: disable=g-import-not-at-top
  if os.path.isfile(checkpoint):
    raise CheckpointKindError(
        f'--inverse-renderer: {checkpoint} is a file, not an orbax checkpoint directory; convert '
        f'it first: python -m g3fa_jax.convert unsup3d --checkpoint {checkpoint} --out DIR')
  try:
    return InverseRenderer.from_checkpoint(checkpoint)
  except (CheckpointMismatchError, FileNotFoundError, ValueError) as e:
    raise CheckpointKindError(f'--inverse-renderer: {e}') from e


def _progress(total: int | None, enabled: bool, desc: str):
  """A tqdm bar on stderr (a no-op object when disabled or tqdm is not installed)."""
  if enabled:
    try:
      from tqdm import auto  # pylint: disable=g-import-not-at-top
      return auto.tqdm(total=total, desc=desc, unit='frame', file=sys.stderr)
    except ImportError:
      pass

  class _Silent:
    def update(self, n: int = 1) -> None:
      del n

    def close(self) -> None:
      pass
  return _Silent()


def read_driving(options: AnimateOptions, size: int, detector
                 ) -> tuple[np.ndarray, np.ndarray, list[float | None]]:
  """(driving crops (T, size, size, 3) uint8, crop box or None, each frame's time in seconds).
  Two passes with crop: a sample of frames for the stable face box, then every frame cropped."""
  box = None
  if options.crop:
    sampler = crop_lib.FrameSampler(options.detect_samples)
    for frame in video.iter_frames(options.driving, options.max_frames):
      sampler.add(frame)
    box = crop_lib.clip_box(sampler.frames, detector, sampler.frame_hw, sampler.scale,
                            options.crop_increase, name=options.driving)
  frames, times = [], []
  for frame, time_s in video.iter_timed_frames(options.driving, options.max_frames):
    frames.append(crop_lib.crop(frame, box, size))
    times.append(time_s)
  return np.stack(frames), box, times


def choose_initial_frame(options: AnimateOptions, animator, source: np.ndarray,
                         driving: np.ndarray, detector) -> int:
  """The reference driving frame of relative motion: `options.best_frame`, else 0 or, with
  `find_best_frame`, the best pose match."""
  if options.best_frame is not None:
    if not 0 <= options.best_frame < len(driving):
      raise ValueError(f'--best-frame {options.best_frame}: {options.driving} has '
                       f'{len(driving)} frames (0 to {len(driving) - 1})')
    return options.best_frame
  if not options.find_best_frame or len(driving) == 1:
    return 0
  if options.best_frame_by == 'landmarks':
    (source_points,) = best_frame_lib.face_landmarks([source], detector)
    if source_points is not None:
      return best_frame_lib.best_frame(source_points,
                                       best_frame_lib.face_landmarks(driving, detector))
    _log('find-best-frame: no face landmarks in the source crop; using the model keypoints')
  elif options.best_frame_by != 'keypoints':
    raise ValueError(f"best_frame_by must be 'landmarks' or 'keypoints', got "
                     f'{options.best_frame_by!r}')
  to_float = lambda x: x.astype(np.float32) / 255.0
  source_points = np.asarray(animator.keypoints(to_float(source))['value'][0])
  driving_points = []
  for start in range(0, len(driving), options.batch_size):
    values = animator.keypoints(to_float(driving[start:start + options.batch_size]))['value']
    driving_points.extend(np.asarray(values))
  return best_frame_lib.best_frame(source_points, driving_points)


def run(options: AnimateOptions, animator=None, inverse_renderer=None,
        log: Callable[[str], None] = _log,
        on_progress: Callable[[int, int], None] | None = None) -> AnimateResult:
  """Animates `options.source` with `options.driving` into `options.out`.

  `animator` / `inverse_renderer`: already loaded ones (e.g. in a notebook); else they are
  restored from `options.checkpoint` / `options.inverse_renderer`. `on_progress(done, total)` is
  called with the frames written so far after each batch (e.g. the web app's progress bar).
  Raises AnimateError subclasses (MediaError, NoFaceError, CheckpointKindError) and
  `paths.OutputPathError` with one-line messages naming the file. The output's folder is made
  only when the first frame is written, and removed again if the run fails.
  """
  start_time = time.perf_counter()
  if options.batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {options.batch_size}')
  if options.best_frame is not None and options.find_best_frame:
    raise ValueError('--best-frame names the reference frame, --find-best-frame looks for one: '
                     'give one of them')
  # Cheap checks before loading any network: the output path first, then the inputs.
  out = paths.check_output_file(options.out, '--out')
  source_full = video.read_source(options.source)
  info = video.probe(options.driving)

  animator = animator or load_animator(options.checkpoint)
  if inverse_renderer is None and options.inverse_renderer:
    inverse_renderer = load_inverse_renderer(options.inverse_renderer)
  size = int(animator.config.get('image_size', 256))
  needs_detector = options.crop or (options.find_best_frame and
                                    options.best_frame_by == 'landmarks')
  detector = crop_lib.default_detector() if needs_detector else None

  source_box = None
  if options.crop:
    source_box = crop_lib.source_box(source_full, detector, options.crop_increase,
                                     name=options.source)
  source = crop_lib.crop(source_full, source_box, size)
  driving, _, times = read_driving(options, size, detector)
  # Each frame at its own time: a variable frame rate clip keeps its timing (and its sound).
  fps = video.output_rate(times, info)
  slots = video.frame_slots(times, fps)
  initial = choose_initial_frame(options, animator, source, driving, detector)
  if options.find_best_frame:
    log(f'best driving frame: {initial} of {len(driving)}')

  audio_from = options.driving if (options.audio and info.has_audio) else None
  paste = options.paste_back and source_box is not None
  if options.paste_back and not paste:
    log('--paste-back needs the face crop; ignored with --no-crop')
  bar = _progress(len(driving), options.progress, 'animate')
  created = paths.make_dirs(out.parent)
  try:
    with video.Mp4Writer(out, fps, audio_from=audio_from) as writer:
      done = 0
      for batch in animator.iter_animation(
          source.astype(np.float32) / 255.0, driving, options.relative,
          options.adapt_movement_scale, initial_frame=initial, batch_size=options.batch_size):
        result = side_by_side.to_uint8(batch)
        frames = ([crop_lib.paste_back(source_full, face, source_box) for face in result]
                  if paste else list(result))
        if options.side_by_side:
          extra = [[] for _ in frames]
          if inverse_renderer is not None:
            depth, normal = inverse_renderer.depth_and_normal(batch)
            cfg = inverse_renderer.config.unsup3d
            depth = side_by_side.depth_to_rgb(depth, cfg.min_depth, cfg.max_depth)
            normal = side_by_side.normal_to_rgb(normal)
            extra = [[d, n] for d, n in zip(depth, normal)]
          left = source_full if paste else source
          frames = [side_by_side.compose([left, driving[done + i], frame] + extra[i])
                    for i, frame in enumerate(frames)]
        writer.write(np.stack(frames), pts=slots[done:done + len(frames)])
        done += len(frames)
        bar.update(len(frames))
        if on_progress is not None:
          on_progress(done, len(driving))
  except BaseException:
    paths.remove_empty_dirs(created)
    raise
  finally:
    bar.close()
  seconds = time.perf_counter() - start_time
  return AnimateResult(str(out), writer.num_frames, float(fps), writer.audio_kept, initial,
                       seconds)

