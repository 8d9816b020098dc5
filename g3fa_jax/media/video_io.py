"""Reads clips frame by frame: video files with PyAV (FFmpeg), frame folders with Pillow.

Frames are (H, W, 3) uint8 RGB, as a player shows them: a video's display matrix (the rotation
tag phones write for portrait video, and mirroring) and its sample aspect ratio are applied, and
so is an image's EXIF orientation. A clip that cannot be decoded, or that ends before the frames
its container indexes, raises `UnreadableClip` with one line naming the file and what went wrong
(`error_line`).
"""

from __future__ import annotations

import fractions
import os
import pathlib
from typing import Iterator

import av
import numpy as np
from PIL import Image
from PIL import ImageOps

DEFAULT_FPS = 25.0
VIDEO_EXTENSIONS = ('.mp4', '.mov', '.mkv', '.avi', '.webm', '.m4v')
# Frame images of a frame folder (FOMM's png format, jpg exports).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')


class UnreadableClip(Exception):
  """A clip that cannot be decoded (missing, truncated, corrupt, not a video)."""


def error_line(e: BaseException) -> str:
  """`TypeName: first line of the message` of an exception, for one-line errors."""
  text = str(e).strip()
  return f'{type(e).__name__}: {text.splitlines()[0]}' if text else type(e).__name__


def video_fps(path: str | os.PathLike) -> float:
  """Average frame rate of the first video stream (DEFAULT_FPS if unknown)."""
  try:
    with av.open(str(path)) as container:
      return _frame_rate(container.streams.video[0]) or DEFAULT_FPS
  except (av.FFmpegError, IndexError, OSError) as e:
    raise UnreadableClip(f'{path}: {error_line(e)}') from e


def display_orientation(matrix: np.ndarray | None) -> tuple[bool, bool, bool]:
  """(transpose, flip left-right, flip up-down) that turn stored pixels into displayed ones.

  `matrix` is FFmpeg's 3x3 display matrix (9 int32, 16.16 fixed point, row-major), which maps a
  stored pixel (x, y) (y down) to x' = a x + c y, y' = b x + d y with a, b, c, d = m[0], m[1],
  m[3], m[4]. Only the 8 right-angle orientations exist in practice (rotation by a multiple of
  90 degrees, optionally mirrored); other matrices are read as the nearest one. Transpose first,
  then flip.
  """
  if matrix is None:
    return False, False, False
  a, b, c, d = (float(matrix[i]) for i in (0, 1, 3, 4))
  if abs(a) + abs(d) >= abs(b) + abs(c):  # x' follows x: no transpose.
    return False, a < 0, d < 0
  return True, c < 0, b < 0


def orient(frame: np.ndarray, orientation: tuple[bool, bool, bool]) -> np.ndarray:
  """(H, W, C) stored pixels -> displayed pixels (see `display_orientation`)."""
  transpose, flip_x, flip_y = orientation
  if transpose:
    frame = frame.transpose(1, 0, 2)
  if flip_x:
    frame = frame[:, ::-1]
  if flip_y:
    frame = frame[::-1]
  return np.ascontiguousarray(frame) if (transpose or flip_x or flip_y) else frame


def _side_data(frame: av.VideoFrame) -> list:
  """The frame's side data entries. PyAV up to 18.1.0 iterates its side data container over
  the entries, 18.1.1 over their types (a mapping's keys)."""
  container = frame.side_data
  return [item if hasattr(item, 'type') else container[item] for item in container]


def _display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
  for side_data in _side_data(frame):
    if 'DISPLAYMATRIX' in str(side_data.type):
      return np.frombuffer(bytes(side_data), np.int32)
  return None


def _display_size(width: int, height: int, sar) -> tuple[int, int]:
  """(width, height) after stretching non-square pixels (sample aspect ratio `sar`) to square
  ones: the width changes, as FFmpeg's `scale=iw*sar:ih` does."""
  if not sar or sar == 1:
    return width, height
  return max(1, round(width * float(sar))), height


# Containers whose index lists every frame (mp4/mov's sample table, avi's idx1).
_FRAME_INDEXED_FORMATS = ('mov', 'mp4', 'avi')


def _indexed_frames(container, stream) -> int:
  """The frames of the container's index that are shown (mp4, mov, avi; an edit list's cut-off
  frames are not), or 0 where the format has no such index (mkv, webm: theirs holds key frames
  only).

  Not `stream.frames`: it counts the frames an edit list hides too (clips cut without
  re-encoding have them), so a whole file would read as a truncated one.
  """
  if set(container.format.name.split(',')) & set(_FRAME_INDEXED_FORMATS):
    return sum(1 for entry in stream.index_entries if not entry.is_discard)
  return 0


def _declared_seconds(container, stream) -> float:
  """How long the video declares itself: the stream's duration, else the container's (which
  covers the audio too), else 0 (unknown)."""
  if stream.duration and stream.time_base:
    return float(stream.duration * stream.time_base)
  if container.duration:
    return container.duration / 1e6
  return 0.0


def stream_frame_rate(stream) -> fractions.Fraction | None:
  """A PyAV video stream's average frame rate, else its guessed one, else None (unknown)."""
  rate = stream.average_rate or stream.guessed_rate
  return fractions.Fraction(rate) if rate else None


def _frame_rate(stream) -> float:
  """`stream_frame_rate` as a float, 0 if unknown."""
  return float(stream_frame_rate(stream) or 0)


def _shortfall(count: int, times: tuple[float | None, float | None], container,
               stream) -> str | None:
  """Why `count` decoded frames, the first and last shown at `times` (seconds, None if unknown),
  fall short of the file, or None if they do not.

  With a frame index the count must match it. Without one only the declared duration is known,
  and it is approximate (the container's covers the audio too), so the frames must end over a
  second and over a tenth of it early. They are judged by the time they reach, not by their
  count: a variable frame rate clip (a browser's or phone's recording, with stalls) has fewer
  frames than its duration times its nominal rate, yet reaches its end.
  """
  indexed = _indexed_frames(container, stream)
  if indexed:
    if count < indexed:
      return f'of the {indexed} its container\'s index lists'
    return None
  declared, rate = _declared_seconds(container, stream), _frame_rate(stream)
  if not declared:
    return None
  first, last = times
  if last is not None and first is not None:
    reached = last - first + (1 / rate if rate else 0.0)
  elif rate:
    reached = count / rate
  else:
    return None
  if declared - reached > max(1.0, 0.1 * declared):
    return f'at {reached:.2f} s of the {declared:.2f} s its duration declares'
  return None


def iter_video_frames(path: str | os.PathLike, with_times: bool = False) -> Iterator:
  """Decoded frames of a video file, in order: (H, W, 3) uint8 RGB as displayed (sample aspect
  ratio and display matrix applied, so a phone's portrait clip is upright and H > W).
  `with_times`: (frame, seconds) pairs instead, each frame's presentation time (None if the file
  gives none), for variable frame rate clips (phones, browser recordings).

  Raises UnreadableClip if the file cannot be opened, decoding fails part-way, or the frames end
  before those the container indexes (a truncated file); the message names the frame where
  decoding stopped.
  """
  try:
    container = av.open(str(path))
  except (av.FFmpegError, OSError) as e:
    raise UnreadableClip(f'{path}: {error_line(e)}') from e
  with container:
    if not container.streams.video:
      raise UnreadableClip(f'{path}: no video stream')
    stream = container.streams.video[0]
    stream.thread_type = 'AUTO'  # Frame threads swallow decoding errors: the count below checks.
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    count, orientation, first_time, last_time = 0, None, None, None
    try:
      for frame in container.decode(stream):
        if orientation is None:  # One orientation per clip, so that every frame has one shape.
          orientation = display_orientation(_display_matrix(frame))
        width, height = _display_size(frame.width, frame.height, sar)
        rgb = frame.to_ndarray(format='rgb24', width=width, height=height)
        count += 1
        time = None if frame.time is None else float(frame.time)
        if time is not None:
          first_time = time if first_time is None else first_time
          last_time = time if last_time is None else max(last_time, time)
        if with_times:
          yield orient(rgb, orientation), time
        else:
          yield orient(rgb, orientation)
    except (av.FFmpegError, OSError, ValueError) as e:
      raise UnreadableClip(f'{path}: decoding failed after {count} frames ({error_line(e)})') from e
    shortfall = _shortfall(count, (first_time, last_time), container, stream)
    if shortfall:
      raise UnreadableClip(f'{path}: the file ends early: decoding stopped after frame {count} '
                           f'{shortfall} (truncated or corrupt file)')


def read_image_file(path: str | os.PathLike) -> np.ndarray:
  """An image file as (H, W, 3) uint8 RGB as displayed (EXIF orientation applied, alpha
  dropped); OSError / ValueError if it cannot be read."""
  with Image.open(path) as image:
    return np.asarray(ImageOps.exif_transpose(image).convert('RGB'))


def frame_files(folder: str | os.PathLike) -> list[pathlib.Path]:
  folder = pathlib.Path(folder)
  return sorted(p for p in folder.iterdir() if p.name.lower().endswith(IMAGE_EXTENSIONS))


def iter_folder_frames(folder: str | os.PathLike) -> Iterator[np.ndarray]:
  """(H, W, 3) uint8 RGB frames of a folder of images, sorted by name."""
  shape = None
  for path in frame_files(folder):
    try:
      frame = read_image_file(path)
    except (OSError, ValueError) as e:
      raise UnreadableClip(f'{path}: {error_line(e)}') from e
    if shape is not None and frame.shape != shape:
      raise UnreadableClip(f'{path}: frame size {frame.shape[:2]} differs from {shape[:2]}')
    shape = frame.shape
    yield frame


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 25,
                codec: str = 'libx264', crf: int = 18) -> None:
  """Writes (T, H, W, 3) uint8 RGB frames as an mp4 (yuv420p; H and W must be even)."""
  with av.open(str(path), mode='w') as container:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = frames.shape[2], frames.shape[1]
    stream.pix_fmt = 'yuv420p'
    if codec == 'libx264':
      stream.options = {'crf': str(crf), 'preset': 'veryfast'}
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
