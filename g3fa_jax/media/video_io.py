"""Reads clips frame by frame: video files with PyAV (FFmpeg), frame folders with Pillow.

Frames are (H, W, 3) uint8 RGB. A clip that cannot be decoded raises `UnreadableClip` with one
line naming the file and what went wrong (`error_line`).
"""

from __future__ import annotations

import os
import pathlib
from typing import Iterator

import av
import numpy as np
from PIL import Image

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


def iter_video_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
  """Decoded (H, W, 3) uint8 RGB frames of a video file, in order.

  Raises UnreadableClip if the file cannot be opened or decoding fails part-way.
  """
  try:
    container = av.open(str(path))
  except (av.FFmpegError, OSError) as e:
    raise UnreadableClip(f'{path}: {error_line(e)}') from e
  with container:
    if not container.streams.video:
      raise UnreadableClip(f'{path}: no video stream')
    stream = container.streams.video[0]
    stream.thread_type = 'AUTO'
    count = 0
    try:
      for frame in container.decode(stream):
        count += 1
        yield frame.to_ndarray(format='rgb24')
    except (av.FFmpegError, OSError, ValueError) as e:
      raise UnreadableClip(f'{path}: decoding failed after {count} frames ({error_line(e)})') from e


def frame_files(folder: str | os.PathLike) -> list[pathlib.Path]:
  folder = pathlib.Path(folder)
  return sorted(p for p in folder.iterdir() if p.name.lower().endswith(IMAGE_EXTENSIONS))


def iter_folder_frames(folder: str | os.PathLike) -> Iterator[np.ndarray]:
  """(H, W, 3) uint8 RGB frames of a folder of images, sorted by name."""
  shape = None
  for path in frame_files(folder):
    try:
      with Image.open(path) as image:
        frame = np.asarray(image.convert('RGB'))
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
