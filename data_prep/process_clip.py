"""One clip -> one record: decode, find the stable face crop, crop, resize and encode frames."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import numpy as np

from data_prep import boxes as boxes_lib
from data_prep import layouts
from g3fa_jax.data import records
from g3fa_jax.media import crop
from g3fa_jax.media import video_io


class SkipClip(Exception):
  """A clip that is skipped (and reported), with the reason as message."""

  def __init__(self, reason: str, detail: str = ''):
    super().__init__(f'{reason}: {detail}' if detail else reason)
    self.reason = reason
    self.detail = detail


@dataclasses.dataclass(frozen=True)
class ClipSettings:
  """How clips are turned into records (stored in the output's prep_config.json).

  Attributes:
    size: stored frame side in pixels.
    encoding: 'jpeg' or 'png'.
    quality: JPEG quality.
    crop: 'detect' (stable face crop) or 'full' (whole frame, resized to a square).
    increase: crop margin, a fraction of the face box on every side.
    detect_every: run the detector on every n-th frame.
    max_detections: at most this many frames are searched for faces (evenly spread).
    detect_max_side: frames are downscaled to this longest side for detection.
    min_face_size: smallest face the detector searches for, in detection pixels.
    face_prob: detection probability threshold.
    min_face_fraction: a clip is 'faceless' if fewer of its searched frames have a face.
    face_check: with crop='full' or a given box, still require a detected face.
    min_frames: shorter clips are skipped.
    max_frames: longer clips are cut to their first max_frames frames (0: keep all).
  """
  size: int = 256
  encoding: str = 'jpeg'
  quality: int = 95
  crop: str = 'detect'
  increase: float = 0.3
  detect_every: int = 5
  max_detections: int = 32
  detect_max_side: int = 320
  min_face_size: int = 20
  face_prob: float = 0.9
  min_face_fraction: float = 0.5
  face_check: bool = True
  min_frames: int = 8
  max_frames: int = 0

  def validate(self) -> None:
    if self.encoding not in records.ENCODINGS:
      raise ValueError(f'encoding must be one of {records.ENCODINGS}, got {self.encoding!r}')
    if self.crop not in ('detect', 'full'):
      raise ValueError(f"crop must be 'detect' or 'full', got {self.crop!r}")
    if self.size < 8 or not 1 <= self.quality <= 100 or self.detect_every < 1:
      raise ValueError(f'bad settings: {self}')

  # Settings that change the stored pixels: a rerun must not mix different values.
  def fingerprint(self) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(self).items()}


@functools.lru_cache(maxsize=4)
def _detector(min_face_size: int):
  from g3fa_jax.face import mtcnn  # pylint: disable=g-import-not-at-top
  return mtcnn.MTCNN(min_face_size=min_face_size)


def _sample_indices(num: int, every: int, cap: int) -> np.ndarray:
  idx = np.arange(0, num, every)
  if len(idx) > cap:
    idx = idx[np.round(np.linspace(0, len(idx) - 1, cap)).astype(int)]
  return idx


def _scan(clip: layouts.ClipSpec, settings: ClipSettings) -> tuple[int, tuple[int, int], list]:
  """First pass: frame count, frame size and the frames to search for faces (downscaled)."""
  count, shape, sampled = 0, None, []
  limit = settings.max_frames or None
  for frame in layouts.iter_frames(clip):
    if limit and count >= limit:
      break
    if shape is None:
      shape = frame.shape[:2]
    if count % settings.detect_every == 0:
      sampled.append(crop.downscale(frame, settings.detect_max_side))
    count += 1
  return count, shape, sampled


def find_crop_box(clip: layouts.ClipSpec, settings: ClipSettings,
                  given_box: Sequence[float] | None, normalized: bool = False
                  ) -> tuple[np.ndarray, int, tuple[int, int]]:
  """(crop box in source pixels, frame count, source (H, W)); raises SkipClip.

  `given_box` is a face box from metadata (in pixels, or fractions of the frame if normalized).
  """
  count, shape, sampled = _scan(clip, settings)
  if count == 0:
    raise SkipClip('unreadable', f'{clip.source}: no frames decoded')
  if count < settings.min_frames:
    raise SkipClip('too short', f'{clip.source}: {count} frames < {settings.min_frames}')
  need_faces = settings.crop == 'detect' and given_box is None
  boxes = []
  if need_faces or settings.face_check:
    keep = _sample_indices(len(sampled), 1, settings.max_detections)
    frames = [sampled[i][0] for i in keep]
    scale = sampled[0][1]
    found = crop.detect_main_faces(frames, _detector(settings.min_face_size),
                                   max_side=settings.detect_max_side, min_prob=settings.face_prob)
    boxes = [b / scale for b in found if b is not None]
    if len(boxes) < max(1, settings.min_face_fraction * len(frames)):
      raise SkipClip('no face', f'{clip.source}: a face in {len(boxes)} of {len(frames)} '
                     'searched frames')
  if given_box is not None:
    box = crop.square_crop(boxes_lib.to_pixels(given_box, shape, normalized), shape,
                           settings.increase)
  elif settings.crop == 'full':
    side = min(shape)
    top, left = (shape[0] - side) / 2.0, (shape[1] - side) / 2.0
    box = np.array([left, top, left + side, top + side], np.float64)
  else:
    box = crop.square_crop(crop.track_union(np.stack(boxes)), shape, settings.increase)
  return box, count, shape


def prepare_clip(clip: layouts.ClipSpec, settings: ClipSettings,
                 given_box: Sequence[float] | None = None, normalized: bool = False
                 ) -> dict[str, Any]:
  """The record of one clip (see `g3fa_jax.data.records`); raises SkipClip."""
  try:
    box, count, shape = find_crop_box(clip, settings, given_box, normalized)
    fps = layouts.clip_fps(clip)
    frames = []
    for frame in layouts.iter_frames(clip):
      if len(frames) >= count:
        break
      if frame.shape[:2] != shape:
        raise SkipClip('unreadable', f'{clip.source}: frame size changes within the clip')
      image = crop.crop_resize(frame, box, settings.size)
      frames.append(records.encode_image(image, settings.encoding, settings.quality))
  except video_io.UnreadableClip as e:
    raise SkipClip('unreadable', str(e)) from e
  if len(frames) != count:
    raise SkipClip('unreadable', f'{clip.source}: {len(frames)} frames on the second read, '
                   f'{count} on the first')
  return {
      'key': clip.key, 'identity': clip.identity, 'video': clip.video, 'clip': clip.clip,
      'source': clip.source, 'num_frames': count, 'fps': fps,
      'box': [round(float(v), 3) for v in box], 'source_size': [int(shape[0]), int(shape[1])],
      'frame_size': [settings.size, settings.size], 'encoding': settings.encoding,
      'frames': frames,
  }
