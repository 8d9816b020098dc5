"""Reads clips frame by frame: video files with PyAV (FFmpeg), frame folders with Pillow.

Frames are (H, W, 3) uint8 RGB, as a player shows them: a video's display matrix (the rotation
tag phones write for portrait video, and mirroring) and its sample aspect ratio are applied, and
so is an image's EXIF orientation. A clip that cannot be decoded, or that ends before the frames
its container indexes, raises `UnreadableClip` with one line naming the file and what went wrong
(`error_line`).
"""

from __future__ import annotations

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
      stream = container.streams.video[0]
      rate = stream.average_rate or stream.guessed_rate
      return float(rate) if rate else DEFAULT_FPS
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


def _display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
  for side_data in frame.side_data:
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


def _expected_frames(container, stream) -> tuple[int, bool]:
  """(frames the file should decode to, exact?): the frames of the container's index that are
  shown (mp4, mov, avi; an edit list's cut-off frames are not), else its duration times the
  frame rate (mkv, webm: their index holds key frames only), else 0 (unknown).

  Not `stream.frames`: it counts the frames an edit list hides too (clips cut without
  re-encoding have them), so a whole file would read as a truncated one.
  """
  if set(container.format.name.split(',')) & set(_FRAME_INDEXED_FORMATS):
    entries = stream.index_entries
    if len(entries):
      return sum(1 for entry in entries if not entry.is_discard), True
  rate = stream.average_rate or stream.guessed_rate
  if stream.duration and stream.time_base and rate:
    return int(float(stream.duration * stream.time_base * rate)), False
  if container.duration and rate:  # Microseconds, every stream: audio may outlast the video.
    return int(container.duration / 1e6 * float(rate)), False
  return 0, False


def _ends_early(count: int, expected: int, exact: bool) -> bool:
  """Whether `count` decoded frames are too few. Durations are approximate (and the container's
  covers the audio too), so then the video must miss over a second and over a tenth of it."""
  if exact:
    return count < expected
  return expected - count > max(25, 0.1 * expected)


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
    count, orientation = 0, None
    try:
      for frame in container.decode(stream):
        if orientation is None:  # One orientation per clip, so that every frame has one shape.
          orientation = display_orientation(_display_matrix(frame))
        width, height = _display_size(frame.width, frame.height, sar)
        rgb = frame.to_ndarray(format='rgb24', width=width, height=height)
        count += 1
        if with_times:
          yield orient(rgb, orientation), (None if frame.time is None else float(frame.time))
        else:
          yield orient(rgb, orientation)
    except (av.FFmpegError, OSError, ValueError) as e:
      raise UnreadableClip(f'{path}: decoding failed after {count} frames ({error_line(e)})') from e
    expected, exact = _expected_frames(container, stream)
    if expected and _ends_early(count, expected, exact):
      declared = "its container's index lists" if exact else 'its duration implies'
      raise UnreadableClip(f'{path}: the file ends early: decoding stopped after frame {count} '
                           f'of the {expected} {declared} (truncated or corrupt file)')


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
