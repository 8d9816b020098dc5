"""Images and videos in, mp4 out (PyAV / FFmpeg), with the driving video's audio kept.

Inputs: an image file (png, jpg, ...), a video file in any container FFmpeg reads (mp4, mov, mkv,
avi, webm, gif, ...), or a folder of frame images (sorted by name, DEFAULT_FPS). Frames are (H, W, 3)
uint8 RGB. The output is H.264 yuv420p mp4; the audio of a given file is copied packet by packet
when mp4 can hold its codec (AAC, MP3, Opus, ...) and re-encoded to AAC otherwise (PCM, Vorbis).
"""

from __future__ import annotations

import dataclasses
import fractions
import os
import pathlib
from typing import Iterator, Sequence

import av
import numpy as np
from PIL import Image

from g3fa_jax.animate.errors import MediaError
from g3fa_jax.media import video_io

# A single image input (a source portrait, or a one-frame driving input).
IMAGE_EXTENSIONS = video_io.IMAGE_EXTENSIONS + ('.webp', '.tif', '.tiff')
DEFAULT_FPS = fractions.Fraction(video_io.DEFAULT_FPS)
# An unreadable file shorter than this cannot have held a video (a WebM or MP4 header alone is
# longer): the upload or the browser's recording came through empty or cut off, and the error
# says so (Chromium, starved of CPU, now and then hands over a 1-byte recording).
_FEWEST_VIDEO_BYTES = 64
# Audio codecs the mp4 muxer accepts as they are.
MP4_AUDIO_CODECS = ('aac', 'mp3', 'alac', 'opus', 'flac', 'ac3', 'eac3')


@dataclasses.dataclass(frozen=True)
class MediaInfo:
  """What a driving input is.

  Attributes:
    kind: 'image', 'video' or 'frames' (a folder of images).
    fps: frame rate (DEFAULT_FPS for images and folders, or when the file has none).
    num_frames: frame count if the container tells it, else None.
    has_audio: whether the file has an audio stream.
    timestamp_rate: the rate whose periods all its frame times fall on (FFmpeg's r_frame_rate;
      fps for a constant frame rate, finer for a variable one), or None.
  """
  kind: str
  fps: fractions.Fraction
  num_frames: int | None
  has_audio: bool
  timestamp_rate: fractions.Fraction | None = None


def media_kind(path: str | os.PathLike) -> str:
  """'frames' for a folder, 'image' for an image file name, else 'video'; MediaError if absent."""
  path = pathlib.Path(path)
  if not path.exists():
    raise MediaError(f'{path}: no such file or folder')
  if path.is_dir():
    return 'frames'
  return 'image' if path.suffix.lower() in IMAGE_EXTENSIONS else 'video'


def read_image(path: str | os.PathLike) -> np.ndarray:
  """An image file as (H, W, 3) uint8 RGB as displayed (EXIF orientation applied, alpha
  dropped); MediaError if it cannot be read."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MediaError(f'{path}: no such image file')
  try:
    return video_io.read_image_file(path)
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    raise MediaError(f'{path}: not a readable image ({video_io.error_line(e)})') from e


def probe(path: str | os.PathLike) -> MediaInfo:
  """The kind, frame rate, frame count and audio presence of an input; MediaError if unreadable."""
  kind = media_kind(path)
  if kind == 'image':
    return MediaInfo('image', DEFAULT_FPS, 1, False)
  if kind == 'frames':
    return MediaInfo('frames', DEFAULT_FPS, len(video_io.frame_files(path)), False)
  try:
    with av.open(str(path)) as container:
      if not container.streams.video:
        raise MediaError(f'{path}: no video stream')
      stream = container.streams.video[0]
      grid = fractions.Fraction(stream.guessed_rate) if stream.guessed_rate else None
      return MediaInfo('video', video_io.stream_frame_rate(stream) or DEFAULT_FPS,
                       int(stream.frames) or None, bool(container.streams.audio), grid)
  except (av.FFmpegError, OSError) as e:
    size = os.path.getsize(path) if os.path.isfile(path) else None
    if size is not None and size < _FEWEST_VIDEO_BYTES:
      raise MediaError(
          f'{path}: not a readable video: {size} byte{"" if size == 1 else "s"}, an empty or '
          'cut-off upload or recording; upload or record it again') from e
    raise MediaError(f'{path}: not a readable video ({video_io.error_line(e)})') from e


def iter_frames(path: str | os.PathLike, max_frames: int = 0) -> Iterator[np.ndarray]:
  """(H, W, 3) uint8 RGB frames of an image, a video or a folder of images, in order.

  At most `max_frames` frames if > 0. MediaError if the input cannot be read or has no frame.
  """
  for frame, _ in iter_timed_frames(path, max_frames):
    yield frame


def iter_timed_frames(path: str | os.PathLike,
                      max_frames: int = 0) -> Iterator[tuple[np.ndarray, float | None]]:
  """`iter_frames` with each frame's presentation time in seconds (a video's own timestamps, so
  a variable frame rate shows; i / DEFAULT_FPS for an image or a folder; None if unknown)."""
  kind = media_kind(path)
  if kind == 'image':
    frames = iter([(read_image(path), 0.0)])
  elif kind == 'frames':
    frames = ((f, i / float(DEFAULT_FPS))
              for i, f in enumerate(video_io.iter_folder_frames(path)))
  else:
    frames = video_io.iter_video_frames(path, with_times=True)
  count = 0
  try:
    for frame in frames:
      if max_frames and count >= max_frames:
        break
      count += 1
      yield frame
  except video_io.UnreadableClip as e:
    raise MediaError(str(e)) from e
  if count == 0:
    raise MediaError(f'{path}: no frames could be decoded')


def on_grid(times: Sequence[float | None], fps: fractions.Fraction | float,
            tolerance: float = 0.25) -> bool:
  """Whether every frame time lies within `tolerance` periods of a whole period of 1 / fps
  after the first one."""
  known = [t for t in times if t is not None]
  return all(abs((t - known[0]) * float(fps) - round((t - known[0]) * float(fps))) <= tolerance
             for t in known)


def output_rate(times: Sequence[float | None], info: MediaInfo) -> fractions.Fraction:
  """The frame rate to write frames with these times at: the input's, unless its frames fall
  off that rate's periods (a variable frame rate) and on those of its timestamp rate."""
  if (info.timestamp_rate and info.timestamp_rate != info.fps and not on_grid(times, info.fps)
      and on_grid(times, info.timestamp_rate)):
    return info.timestamp_rate
  return info.fps


def frame_slots(times: Sequence[float | None], fps: fractions.Fraction | float) -> list[int]:
  """Slots (frame periods of 1 / fps from the first frame) at which frames with these
  presentation times show, increasing: 0, 1, 2, ... for a constant frame rate; gaps where a
  variable-rate clip (a browser's webcam recording) holds a frame longer. A frame without a time,
  or whose time rounds onto its predecessor's slot, takes the next slot."""
  slots: list[int] = []
  start = next((t for t in times if t is not None), 0.0)
  for t in times:
    slot = -1 if t is None else int(round((t - start) * float(fps)))
    slots.append(max(slot, slots[-1] + 1) if slots else max(slot, 0))
  return slots


def read_source(path: str | os.PathLike) -> np.ndarray:
  """The source portrait: an image file, or the first frame of a video."""
  return next(iter_frames(path, max_frames=1))


def _even(frame: np.ndarray) -> np.ndarray:
  """Pads odd heights/widths by repeating the last row/column (yuv420p needs even sizes)."""
  pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
  if pad_h or pad_w:
    frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode='edge')
  return frame


def _samples(frame: av.AudioFrame, start: int, stop: int) -> av.AudioFrame:
  """Samples [start, stop) of an audio frame (every channel)."""
  samples = frame.to_ndarray()  # (channels, n) planar, (1, n * channels) packed.
  channels = 1 if frame.format.is_planar else len(frame.layout.channels)
  cut = av.AudioFrame.from_ndarray(
      np.ascontiguousarray(samples[:, start * channels:stop * channels]),
      format=frame.format.name, layout=frame.layout.name)
  cut.sample_rate = frame.sample_rate
  return cut


# Channel layouts by channel count, for inputs that give the count only (PCM in mkv, wav).
DEFAULT_LAYOUTS = {1: 'mono', 2: 'stereo', 3: '2.1', 4: 'quad', 5: '5.0', 6: '5.1', 7: '6.1',
                   8: '7.1'}


def _named_layout(layout: av.AudioLayout) -> str:
  """The layout's name, or the usual layout of its channel count when its channels are unnamed
  (FFmpeg's '1 channels')."""
  if all(channel.name != 'NONE' for channel in layout.channels):
    return layout.name
  return DEFAULT_LAYOUTS.get(len(layout.channels), 'stereo')


class Mp4Writer:
  """Writes uint8 RGB frames to an mp4, then the audio of `audio_from` cut to the video's length.

  The file appears under its name only when `close()` succeeds (it is written to a temporary name
  first), so a failed run never leaves a truncated video behind.

    with Mp4Writer('out.mp4', fps, audio_from='driving.mp4') as writer:
      writer.write(frames)  # (T, H, W, 3) or (H, W, 3) uint8, any number of calls

  Frames follow each other one frame period apart unless `write` is given their slots (`pts`, in
  periods of 1 / fps): a recording that skips slots holds each frame until the next one's.
  """

  def __init__(self, path: str | os.PathLike, fps: fractions.Fraction | float,
               audio_from: str | os.PathLike | None = None, crf: int = 18):
    self.path = pathlib.Path(path)
    self.fps = fractions.Fraction(fps).limit_denominator(100000)
    self.num_frames = 0
    self.audio_kept = False
    self._next_pts = 0  # The first free slot, in frame periods.
    self._tmp = self.path.with_name(f'.{self.path.name}.partial')
    self._crf = crf
    self._video = None
    self._container = av.open(str(self._tmp), mode='w', format='mp4')
    self._audio_in = self._audio_out = self._audio_encoder = None
    if audio_from is not None:
      try:
        self._open_audio(audio_from)
      except MediaError:
        self.abort()
        raise

  def _open_audio(self, path: str | os.PathLike) -> None:
    try:
      source = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
      raise MediaError(f'{path}: cannot read its audio ({video_io.error_line(e)})') from e
    if not source.streams.audio:
      source.close()
      return
    stream = source.streams.audio[0]
    self._audio_in = (source, stream)
    # The audio keeps its place on the driving video's clock: the output starts where the
    # driving video's frames start (the audio's own start, e.g. in a file of audio only).
    clock = source.streams.video[0] if source.streams.video else stream
    self._clock_start = fractions.Fraction(clock.start_time or 0) * clock.time_base

  def _add_audio_stream(self) -> None:
    """After the video stream, so that the video is stream 0 as players and tools expect."""
    stream = self._audio_in[1]
    if stream.codec_context.name in MP4_AUDIO_CODECS:
      self._audio_out = self._container.add_stream_from_template(stream)
    else:  # Re-encode what mp4 cannot hold, keeping the rate and the channel layout.
      self._audio_out = self._container.add_stream('aac', rate=stream.codec_context.sample_rate)
      self._audio_out.layout = _named_layout(stream.layout)
      self._audio_encoder = True

  def __enter__(self) -> 'Mp4Writer':
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    if exc_type is None:
      self.close()
    else:
      self.abort()

  def write(self, frames: np.ndarray, pts: Sequence[int] | None = None) -> None:
    """Appends (T, H, W, 3) or (H, W, 3) uint8 RGB frames (all of one size).

    `pts`: T increasing slots (frame periods from the start) at which the frames show; default:
    the slots right after the last frame written.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
      frames = frames[None]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
      raise ValueError(f'expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}')
    if pts is None:
      pts = range(self._next_pts, self._next_pts + len(frames))
    if len(pts) != len(frames):
      raise ValueError(f'pts: {len(pts)} slots for {len(frames)} frames')
    for frame, slot in zip(frames, pts):
      if slot < self._next_pts:
        raise ValueError(f'pts: slot {slot} is not after the last one written '
                         f'({self._next_pts - 1})')
      frame = _even(frame)
      if self._video is None:
        self._video = self._container.add_stream('libx264', rate=self.fps)
        self._video.width, self._video.height = frame.shape[1], frame.shape[0]
        self._video.pix_fmt = 'yuv420p'
        self._video.options = {'crf': str(self._crf), 'preset': 'veryfast'}
        if self._audio_in is not None:
          self._add_audio_stream()
      elif (frame.shape[1], frame.shape[0]) != (self._video.width, self._video.height):
        raise ValueError(f'frame size {frame.shape[:2]} differs from the first frame\'s '
                         f'{(self._video.height, self._video.width)}')
      picture = av.VideoFrame.from_ndarray(frame, format='rgb24')
      picture.pts, picture.time_base = int(slot), fractions.Fraction(1) / self.fps
      self._container.mux(self._video.encode(picture))
      self.num_frames += 1
      self._next_pts = int(slot) + 1

  def _copy_audio(self) -> None:
    """The audio between the driving video's first frame and the output's last one, on the
    output's clock (time 0 = the driving video's first frame)."""
    source, stream = self._audio_in
    duration = fractions.Fraction(self._next_pts) / self.fps
    if self._audio_encoder:
      # Timestamps in samples: with them the encoder's priming samples (1024 for AAC) get
      # negative times, which mp4 hides with an edit list; without them the audio would start
      # one priming delay late.
      rate = stream.codec_context.sample_rate
      total = round(duration * rate)  # Samples that fit the video.
      offset = 0
      for frame in source.decode(stream):
        if frame.time is not None:
          offset = round((fractions.Fraction(frame.time) - self._clock_start) * rate)
        if offset >= total:
          break
        if offset + frame.samples <= 0:  # Audio before the video's first frame.
          offset += frame.samples
          continue
        if offset < 0:
          frame, offset = _samples(frame, -offset, frame.samples), 0
        if offset + frame.samples > total:
          frame = _samples(frame, 0, total - offset)
        frame.pts, frame.time_base = offset, fractions.Fraction(1, rate)
        offset += frame.samples
        self._container.mux(self._audio_out.encode(frame))
      self._container.mux(self._audio_out.encode(None))
    else:
      # Packets are copied whole; a late start stays a late start (mp4 keeps the gap in an edit
      # list), and the encoder delay's negative times are kept as they are.
      start = round(self._clock_start / stream.time_base)
      for packet in source.demux(stream):
        if packet.dts is None or packet.pts is None:
          continue  # The demuxer's final flush packet.
        if (packet.pts - start) * stream.time_base >= duration:
          break
        packet.pts -= start
        packet.dts -= start
        packet.stream = self._audio_out
        self._container.mux(packet)
    self.audio_kept = True

  def close(self) -> None:
    """Flushes the video, copies the audio and moves the file to its name."""
    if self._container is None:
      return
    try:
      if self._video is None:
        raise ValueError(f'{self.path}: no frames were written')
      self._container.mux(self._video.encode(None))
      if self._audio_in is not None:
        self._copy_audio()
      self._container.close()
      self._container = None
      os.replace(self._tmp, self.path)
    finally:
      self.abort()

  def abort(self) -> None:
    """Closes everything and removes the temporary file (the output name is left untouched)."""
    if self._audio_in is not None:
      self._audio_in[0].close()
      self._audio_in = None
    if self._container is not None:
      try:
        self._container.close()
      except (av.FFmpegError, OSError, ValueError):
        pass
      self._container = None
    if self._tmp.exists():
      self._tmp.unlink()
