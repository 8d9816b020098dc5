"""Users' files the readers must get right, made here: phone videos with a rotation tag, non-square
pixels, EXIF-rotated photos, and truncated files that would otherwise pass as short clips."""

from __future__ import annotations

import fractions
import pathlib

import av
import numpy as np
import pytest
from PIL import Image

from g3fa_jax.animate import video
from g3fa_jax.animate.errors import MediaError
from g3fa_jax.media import video_io


def portrait(height: int = 48, width: int = 32) -> np.ndarray:
  """(H, W, 3) uint8 with H > W, different in every quadrant (so any rotation or flip shows)."""
  frame = np.zeros((height, width, 3), np.uint8)
  frame[:height // 2, :width // 2] = (230, 40, 40)
  frame[:height // 2, width // 2:] = (40, 230, 40)
  frame[height // 2:, :width // 2] = (40, 40, 230)
  frame[height // 2:, width // 2:] = (230, 230, 230)
  return frame


def write_mp4(path: pathlib.Path, frames: np.ndarray, fps: int = 25, rotation: int | None = None,
              hflip: bool = False, sar: fractions.Fraction | None = None,
              options: dict[str, str] | None = None, container_format: str | None = None
              ) -> pathlib.Path:
  """Stored pixels `frames`, with a display matrix (PyAV's counter-clockwise `rotation`, then
  `hflip`) and a sample aspect ratio if given."""
  with av.open(str(path), 'w', format=container_format, options=options or {}) as container:
    stream = container.add_stream('libx264', rate=fps)
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = 'yuv420p'
    if sar is not None:
      stream.codec_context.sample_aspect_ratio = sar
    if rotation is not None:
      stream.set_display_rotation(rotation, hflip=hflip)
    for frame in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode(None))
  return path


def noise_clip(num_frames: int, size: int = 64, seed: int = 0) -> np.ndarray:
  """Frames that do not compress much, so half the bytes hold about half the frames."""
  return np.random.default_rng(seed).integers(0, 256, (num_frames, size, size, 3), np.uint8)


def close(a: np.ndarray, b: np.ndarray) -> bool:
  return a.shape == b.shape and float(np.mean(np.abs(a.astype(float) - b))) < 8


# Stored pixels that a player shows as `portrait()`: display = rotate counter-clockwise by
# `rotation` degrees, then mirror if hflip.
@pytest.mark.parametrize('rotation,hflip', [(90, False), (-90, False), (180, False),
                                            (90, True), (0, True)])
def test_rotation_tag_gives_upright_frames(tmp_path, rotation, hflip):
  upright = portrait()
  stored = upright[:, ::-1] if hflip else upright
  stored = np.ascontiguousarray(np.rot90(stored, k=-rotation // 90))
  path = write_mp4(tmp_path / 'phone.mp4', np.stack([stored] * 3), rotation=rotation,
                   hflip=hflip)
  frames = list(video_io.iter_video_frames(path))
  assert len(frames) == 3
  for frame in frames:
    assert close(frame, upright), (frame.shape, upright.shape)
  # The animation CLI's reader (and the source-from-video path) show the same frames.
  assert close(video.read_source(path), upright)


def test_sample_aspect_ratio_stretches_to_square_pixels(tmp_path):
  display = portrait(32, 64)
  stored = np.ascontiguousarray(display[:, ::2])  # 2:1 pixels: every other column stored.
  path = write_mp4(tmp_path / 'anamorphic.mp4', np.stack([stored] * 2),
                   sar=fractions.Fraction(2, 1))
  (frame, _) = list(video_io.iter_video_frames(path))
  assert close(frame, display)


def test_exif_orientation_of_photos(tmp_path):
  upright = portrait()
  exif = Image.Exif()
  exif[0x0112] = 6  # "rotate 90 clockwise to display": the stored pixels lie on their side.
  stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1)))
  stored.save(tmp_path / 'photo.jpg', exif=exif, quality=95)
  assert close(video.read_image(tmp_path / 'photo.jpg'), upright)
  folder = tmp_path / 'frames'
  folder.mkdir()
  stored.save(folder / '0000000.jpg', exif=exif, quality=95)
  assert close(next(video_io.iter_folder_frames(folder)), upright)


@pytest.mark.parametrize('name,kwargs', [
    ('faststart.mp4', {'options': {'movflags': 'faststart'}}),
    ('clip.mkv', {}),
])
def test_truncated_file_is_an_error_naming_the_frame(tmp_path, name, kwargs):
  whole = write_mp4(tmp_path / name, noise_clip(60), **kwargs)
  assert len(list(video_io.iter_video_frames(whole))) == 60  # the whole file reads as it is
  cut = tmp_path / f'cut-{name}'
  data = whole.read_bytes()
  cut.write_bytes(data[:len(data) // 2])
  decoded = []
  with pytest.raises(video_io.UnreadableClip, match=r'ends early.*after frame \d+ of the 60'
                     if name.endswith('mp4') else r'ends early.*after frame \d+ at [\d.]+ s of '
                     r'the 2.40 s its duration declares') as info:
    for frame in video_io.iter_video_frames(cut):
      decoded.append(frame)
  assert f'after frame {len(decoded)} ' in str(info.value) and 0 < len(decoded) < 50
  assert '\n' not in str(info.value)
  # The animation CLI's reader says the same in one line.
  with pytest.raises(MediaError, match='ends early'):
    list(video.iter_frames(cut))
  # --max-frames below the cut reads only what it needs, without error.
  assert len(list(video.iter_frames(cut, max_frames=5))) == 5


def test_edit_list_cut_is_not_truncation(tmp_path):
  """A clip cut without re-encoding (`-ss ... -c copy`): 5 frames before the cut stay in the file
  with negative times, hidden by an edit list; the container still counts 30 frames."""
  source = write_mp4(tmp_path / 'source.mp4', noise_clip(30))
  cut = tmp_path / 'cut.mp4'
  with av.open(str(source)) as inp, av.open(str(cut), 'w') as out:
    stream = inp.streams.video[0]
    copy = out.add_stream_from_template(stream)
    shift = int(round(fractions.Fraction(5, 25) / stream.time_base))
    for packet in inp.demux(stream):
      if packet.dts is None:
        continue
      packet.pts -= shift
      packet.dts -= shift
      packet.stream = copy
      out.mux(packet)
  with av.open(str(cut)) as container:
    assert container.streams.video[0].frames == 30
  assert len(list(video_io.iter_video_frames(cut))) == 25


def write_timed_webm(path: pathlib.Path, times: list[float], fps: int = 30) -> pathlib.Path:
  """A VP8 webm whose frames show at `times` (seconds, millisecond clock), its stream declaring
  `fps` frames per second: a browser's recording, which holds a frame while the machine stalls."""
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libvpx', rate=fps)
    stream.width = stream.height = 32
    stream.pix_fmt = 'yuv420p'
    stream.codec_context.time_base = fractions.Fraction(1, 1000)
    for frame, time in zip(noise_clip(len(times), 32), times):
      picture = av.VideoFrame.from_ndarray(frame, format='rgb24')
      picture.pts, picture.time_base = round(time * 1000), fractions.Fraction(1, 1000)
      container.mux(stream.encode(picture))
    container.mux(stream.encode(None))
  return path


def test_variable_frame_rate_recording_with_stalls_is_not_truncation(tmp_path):
  """30 frames a second for 1 s, a 3-s stall, then 5 more frames: far fewer frames than the
  duration times the declared rate, but they reach the end, so the clip is whole. Cut in half
  (by bytes: the first second's frames), it ends early."""
  times = [i / 30 for i in range(30)] + [4.0 + i / 30 for i in range(5)]
  path = write_timed_webm(tmp_path / 'recording.webm', times)
  read = list(video_io.iter_video_frames(path, with_times=True))
  assert len(read) == len(times)
  np.testing.assert_allclose([t for _, t in read], times, atol=1e-3)
  _, read_times = zip(*video.iter_timed_frames(path))
  np.testing.assert_allclose(read_times, times, atol=1e-3)
  cut = tmp_path / 'cut.webm'
  data = path.read_bytes()
  cut.write_bytes(data[:len(data) // 2])
  with pytest.raises(video_io.UnreadableClip, match=r'ends early.*after frame \d+ at [\d.]+ s '
                     r'of the 4.1\d s its duration declares'):
    list(video_io.iter_video_frames(cut))


def test_audio_longer_than_video_is_not_truncation(tmp_path):
  """mkv declares no frame count; its duration covers the audio, here 1 s past the video."""
  path = tmp_path / 'long_audio.mkv'
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=25)
    stream.width = stream.height = 32
    stream.pix_fmt = 'yuv420p'
    audio = container.add_stream('pcm_s16le', rate=8000)
    audio.layout = 'mono'
    for frame in noise_clip(25, 32):
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode(None))
    for start in range(0, 16000, 800):
      samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format='s16',
                                           layout='mono')
      samples.sample_rate, samples.pts = 8000, start
      container.mux(audio.encode(samples))
    container.mux(audio.encode(None))
  assert len(list(video_io.iter_video_frames(path))) == 25


def test_prepare_reads_phone_clips_upright_and_skips_truncated_ones(tmp_path):
  """data_prep: a portrait clip stored sideways with a rotation tag is a face clip (not 'no
  face'); a faststart mp4 cut in half is skipped as unreadable, naming the frame it stopped at."""
  pytest.importorskip('skimage')
  from data_prep import astronaut_clips  # pylint: disable=g-import-not-at-top
  from data_prep import prepare
  from data_prep import process_clip
  from g3fa_jax.data import source as source_lib

  upright = astronaut_clips.face_clip(10, 128, seed=3)[:, :, 16:112]  # (10, 128, 96, 3)
  stored = np.ascontiguousarray(np.rot90(upright, k=-1, axes=(1, 2)))  # (10, 96, 128, 3)
  raw = tmp_path / 'raw'
  raw.mkdir()
  write_mp4(raw / 'phone_1.mp4', stored, rotation=90)
  whole = write_mp4(tmp_path / 'cut_1.mp4', noise_clip(40), options={'movflags': 'faststart'})
  data = whole.read_bytes()
  (raw / 'cut_1.mp4').write_bytes(data[:len(data) // 2])
  summary = prepare.run(str(raw), str(tmp_path / 'out'), layout='flat',
                        settings=process_clip.ClipSettings(size=32), test_fraction=0,
                        progress=False)
  assert summary.written == {'train': 1}
  (skipped,) = summary.skipped
  assert skipped['key'] == 'cut_1' and skipped['reason'] == 'unreadable'
  assert 'ends early' in skipped['detail'] and 'of the 40' in skipped['detail']
  record = source_lib.ClipSource.from_dir(tmp_path / 'out', 'train')[0]
  assert record['key'] == 'phone_1' and record['source_size'] == [128, 96]
  assert record['num_frames'] == 10


def write_tone_clip(path: pathlib.Path, layout: str, onset: float, audio_seconds: float,
                    video_frames: int = 25, fps: int = 25, rate: int = 16000,
                    codec: str = 'pcm_s16le', audio_start: float = 0.0) -> pathlib.Path:
  """Black frames from time 0 and audio from `audio_start` seconds: silence, then a 440 Hz tone
  from `onset` seconds (on the video's clock)."""
  channels = 1 if layout == 'mono' else 2
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=fps)
    stream.width = stream.height = 32
    stream.pix_fmt = 'yuv420p'
    audio = container.add_stream(codec, rate=rate)
    audio.layout = layout
    for _ in range(video_frames):
      container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8),
                                                             format='rgb24')))
    container.mux(stream.encode(None))
    first = round(audio_start * rate)
    t = (first + np.arange(int(rate * audio_seconds))) / rate
    tone = np.where(t >= onset, 0.5 * np.sin(2 * np.pi * 440 * t), 0)
    sample_format = audio.codec_context.codec.audio_formats[0]
    step = 1024 if codec == 'aac' else 800
    for start in range(0, len(tone), step):
      chunk = tone[start:start + step, None]
      if sample_format.is_planar:
        chunk = np.repeat(chunk.T, channels, 0).astype(np.float32)
      else:  # packed s16
        chunk = (np.repeat(chunk, channels, 1).reshape(1, -1) * 32767).astype(np.int16)
      frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=sample_format.name,
                                         layout=layout)
      frame.sample_rate, frame.pts = rate, first + start
      frame.time_base = fractions.Fraction(1, rate)
      container.mux(audio.encode(frame))
    container.mux(audio.encode(None))
  return path


def audio_facts(path: pathlib.Path) -> dict:
  """Codec, channel count, the stream's duration and the tone's onset (seconds) as decoded."""
  with av.open(str(path)) as container:
    stream = container.streams.audio[0]
    first, chunks = None, []
    for frame in container.decode(stream):
      first = frame.time if first is None else first
      chunks.append(frame.to_ndarray()[0])  # first channel if planar; packed: interleaved
    samples = np.abs(np.concatenate(chunks).astype(np.float64))
    if not stream.format.is_planar:
      samples = samples[::len(stream.layout.channels)]
    onset = int(np.argmax(samples > 0.1 * samples.max())) / stream.rate + (first or 0.0)
    return {'codec': stream.codec_context.name, 'channels': len(stream.layout.channels),
            'seconds': float(stream.duration * stream.time_base) if stream.duration else None,
            'onset': onset}


@pytest.mark.parametrize('layout', ['mono', 'stereo'])
def test_reencoded_audio_stays_in_sync_and_keeps_its_channels(tmp_path, layout):
  """PCM in mkv must be re-encoded to AAC for mp4: the tone starts when it did, the audio ends
  with the video (1 s), mono stays mono."""
  driving = write_tone_clip(tmp_path / 'pcm.mkv', layout, onset=0.2, audio_seconds=2.0)
  assert abs(audio_facts(driving)['onset'] - 0.2) < 1e-3
  out = tmp_path / 'out.mp4'
  with video.Mp4Writer(out, 25, audio_from=driving) as writer:
    writer.write(np.zeros((25, 32, 32, 3), np.uint8))
  facts = audio_facts(out)
  one_aac_frame = 1024 / 16000
  assert facts['codec'] == 'aac' and facts['channels'] == (1 if layout == 'mono' else 2)
  assert abs(facts['onset'] - 0.2) < one_aac_frame / 4, facts
  assert abs(facts['seconds'] - 1.0) < one_aac_frame, facts


@pytest.mark.parametrize('codec', ['pcm_s16le', 'aac'])
def test_audio_that_starts_after_the_video_stays_in_sync(tmp_path, codec):
  """Audio from 0.3 s of the video's clock (re-encoded from PCM, or AAC copied as it is): the
  tone at 0.5 s of the video is at 0.5 s in the output too."""
  suffix = '.mkv' if codec.startswith('pcm') else '.mp4'
  driving = write_tone_clip(tmp_path / f'late{suffix}', 'mono', onset=0.5, audio_seconds=1.5,
                            codec=codec, audio_start=0.3)
  out = tmp_path / 'out.mp4'
  with video.Mp4Writer(out, 25, audio_from=driving) as writer:
    writer.write(np.zeros((25, 32, 32, 3), np.uint8))
  facts = audio_facts(out)
  assert abs(audio_facts(driving)['onset'] - 0.5) < 0.01
  assert abs(facts['onset'] - 0.5) < 1024 / 16000 / 4, facts
