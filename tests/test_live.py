"""The live mode headless: a made-up clip played as if live through the loop on a simulated clock
(so which frames are dropped is exact), the recording, the reference key, and its parts."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest

from conftest import describe, make_clip
from g3fa_jax.live import __main__ as cli
from g3fa_jax.live import keys as keys_lib
from g3fa_jax.live import loop
from g3fa_jax.live.crop_box import SmoothedBox
from g3fa_jax.live.driver import LiveDriver
from g3fa_jax.live.mailbox import Mailbox
from g3fa_jax.live.paced_video import PacedVideo

FPS = 16  # A frame period of 1/16 s and a model step of 3/16 s are exact in binary.
MODEL_SECONDS = 3 / FPS
DISPLAY = 128


class FakeClock:
  """Time that passes only when someone sleeps or the (simulated) model works."""

  def __init__(self):
    self.t = 0.0

  def now(self) -> float:
    return self.t

  def sleep(self, seconds: float) -> None:
    self.t += max(0.0, seconds)


class SlowDriver(LiveDriver):
  """The real driver, taking MODEL_SECONDS of simulated time per frame."""

  def __init__(self, clock: FakeClock, *args):
    super().__init__(*args)
    self.clock = clock

  def animate(self, crop):
    self.clock.t += MODEL_SECONDS
    return super().animate(crop)


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
  root = tmp_path_factory.mktemp('live')
  return {'video': make_clip(root / 'clip.mp4', 24, FPS, audio_codec=None),
          'source': make_clip(root / 'source.mp4', 1, FPS, audio_codec=None)}


def _result_panels(path) -> tuple[np.ndarray, list[float]]:
  """The recording's result panels (below the HUD rows) as float, and each frame's time."""
  with av.open(str(path)) as container:
    frames = [(f.to_ndarray(format='rgb24'), float(f.time)) for f in container.decode(video=0)]
  panels = np.stack([f[DISPLAY // 4:, -DISPLAY:].astype(np.float32) for f, _ in frames])
  return panels, [t for _, t in frames]


def test_headless_session_drops_busy_frames_records_and_resets_the_reference(
    animator, checkpoints, clip, tmp_path):
  clock = FakeClock()
  out = tmp_path / 'session.mp4'
  options = loop.LiveOptions(
      checkpoint=str(checkpoints['g3fa']), source=str(clip['source']), driving=str(clip['video']),
      out=str(out), window=False, crop=False, keys='r@12', display_height=DISPLAY)
  stats = loop.run(options, animator=animator, clock=clock,
                   make_driver=lambda *args: SlowDriver(clock, *args), log=lambda _: None)
  # Each step takes 3 frame periods: the model gets frames 0, 3, ..., 21 and then 23 (the newest
  # when the clip ends); the frames in between arrive while it is busy and are dropped.
  taken = [0, 3, 6, 9, 12, 15, 18, 21, 23]
  assert (stats.shown, stats.dropped, stats.arrived) == (len(taken), 24 - len(taken), 24)
  assert stats.references == [0, 12]  # the first frame, then the r key at frame 12
  # A frame waits for the model's step only when it arrived before the previous step ended (23).
  assert stats.latencies == pytest.approx([MODEL_SECONDS] * 8 + [MODEL_SECONDS + 1 / FPS])
  assert stats.seconds == pytest.approx(21 / FPS + 2 * MODEL_SECONDS)  # 21 taken, then 23

  info = describe(out)
  assert info['frames'] == len(taken) and info['size'] == (DISPLAY, 2 * DISPLAY)
  panels, times = _result_panels(out)
  # Each shown frame plays at its stream time; the dropped frames' slots hold the previous one.
  np.testing.assert_allclose(times, [i / FPS for i in taken], atol=1e-3)
  # Relative motion from the reference frame: at the reference the source is not moved, so the
  # reset frame (12) shows what the first frame showed, while frame 9, moved, does not.
  at = {index: panels[i] for i, index in enumerate(taken)}
  reset_change = np.mean(np.abs(at[12] - at[0]))
  moved_change = np.mean(np.abs(at[9] - at[0]))
  # (H.264 noise: ~1.6 levels between two encodings of one image; the motion changes ~12.)
  assert reset_change < 3.0 and moved_change > 4 * reset_change, (reset_change, moved_change)


def test_cli_headless_prints_the_summary_and_refuses_bad_input(checkpoints, clip, tmp_path,
                                                               capsys, monkeypatch):
  out = tmp_path / 'cli' / 'session.mp4'
  argv = ['--checkpoint', str(checkpoints['g3fa']), '--source', str(clip['source']),
          '--driving', str(clip['video']), '--no-crop', '--no-window', '--display-height', '64',
          '--no-compile-cache']
  assert cli.main(argv + ['--out', str(out), '--keys', 'q@5']) == 0
  summary = capsys.readouterr().out
  assert 'frames shown' in summary and 'frames/s' in summary and str(out) in summary
  assert 1 <= describe(out)['frames'] <= 6  # real time: some frames may be dropped
  for extra, message in [
      (['--keys', 'x@3'], "--keys: 'x@3' is not KEY@FRAME"),
      (['--smoothing', '1.5'], '--smoothing must lie in [0, 1)'),
      (['--out', str(tmp_path)], f'--out {tmp_path}: is a folder'),
  ]:
    assert cli.main(argv + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: ') and message in err[-1], err
  missing = [a if a != str(clip['video']) else str(tmp_path / 'missing.mp4') for a in argv]
  assert cli.main(missing) == 2
  assert 'missing.mp4: no such file' in capsys.readouterr().err
  # A window needs a display; without one the session stops before it starts, saying so.
  monkeypatch.delenv('DISPLAY', raising=False)
  monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
  assert cli.main([a for a in argv if a != '--no-window']) == 2
  assert '--no-window' in capsys.readouterr().err.strip().splitlines()[-1]


def test_camera_reads_on_its_thread_and_counts_what_it_drops(checkpoints, clip, animator,
                                                            tmp_path):
  """OpenCV's capture on the test clip stands in for a webcam (it reads as fast as it can)."""
  pytest.importorskip('cv2', reason='the camera source needs OpenCV (the live extra)')
  options = loop.LiveOptions(
      checkpoint=str(checkpoints['g3fa']), source=str(clip['source']), camera=str(clip['video']),
      window=False, crop=False, display_height=64)
  stats = loop.run(options, animator=animator, log=lambda _: None)
  assert stats.arrived == 24 and stats.shown + stats.dropped == 24 and stats.shown >= 1


def test_mailbox_hands_over_only_the_newest_item():
  box: Mailbox[int] = Mailbox()
  for i in range(3):
    box.put(i)
  assert box.take() == 2 and (box.dropped, box.arrived) == (2, 3)
  assert box.take(timeout=0.01) is None
  got = []
  taker = threading.Thread(target=lambda: got.append(box.take()))
  taker.start()
  box.close()  # wakes the waiting taker
  taker.join(timeout=5)
  assert got == [None] and not taker.is_alive()


def test_paced_video_waits_for_the_next_frame_and_skips_past_ones(clip):
  clock = FakeClock()
  source = PacedVideo(clip['video'], clock)
  assert source.fps == FPS
  source.start()
  assert source.next().index == 0
  assert source.next().index == 1 and clock.t == pytest.approx(1 / FPS)  # waited for it
  clock.t = 10.4 / FPS
  frame = source.next()
  assert (frame.index, frame.time, source.dropped) == (10, 10 / FPS, 8)
  clock.t = 100.0
  assert source.next().index == 23 and source.next() is None
  assert (source.dropped, source.arrived) == (20, 24)


class _Detector:
  """A face detector that finds the boxes it is given, one per call (None: no face)."""

  def __init__(self, boxes):
    self.boxes = list(boxes)
    self.calls = 0

  def detect_batch(self, images):
    box = self.boxes[self.calls]
    self.calls += 1
    if box is None:
      return [(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)))]
    return [(np.asarray([box], np.float64), np.asarray([0.99]), np.zeros((1, 5, 2)))]


def test_smoothed_box_redetects_every_n_frames_and_blends():
  frame = np.zeros((200, 300, 3), np.uint8)
  detector = _Detector([None, [100, 50, 140, 90], [120, 50, 160, 90], None])
  box = SmoothedBox(detector, detect_every=2, smoothing=0.5, increase=0.0)
  assert box.update(frame) is None  # no face yet: searched again on the next frame
  first = box.update(frame).copy()
  np.testing.assert_allclose(first, [100, 50, 140, 90])
  np.testing.assert_allclose(box.update(frame), first)  # not a detection frame
  np.testing.assert_allclose(box.update(frame), [110, 50, 150, 90])  # halfway to the new face
  box.update(frame)
  np.testing.assert_allclose(box.update(frame), [110, 50, 150, 90])  # a miss keeps the box
  assert (detector.calls, box.detections, box.misses) == (4, 4, 2)


def test_key_scripts():
  script = keys_lib.KeyScript(keys_lib.parse_script('q@9, r@3,r@4'))
  assert script.due(2) == [] and script.due(5) == ['r', 'r'] and script.due(100) == ['q']
  assert script.due(100) == []
  with pytest.raises(ValueError, match="--keys: 'r30' is not KEY@FRAME"):
    keys_lib.parse_script('r30')


def test_session_with_face_crop_waits_for_a_face_then_follows_it(animator, checkpoints, tmp_path,
                                                                monkeypatch):
  """Two frames without a face ('no face' shown, nothing animated), then a face moving right:
  the first frame with a face is the reference, and the crop box follows the face."""
  skimage_data = pytest.importorskip('skimage.data')
  from PIL import Image  # pylint: disable=g-import-not-at-top
  portrait = Image.fromarray(skimage_data.astronaut()).resize((192, 192))
  portrait.save(tmp_path / 'portrait.png')
  driving = tmp_path / 'moving.mp4'
  with av.open(str(driving), 'w') as container:
    stream = container.add_stream('libx264', rate=FPS)
    stream.width, stream.height, stream.pix_fmt = 320, 192, 'yuv420p'
    for i in range(7):
      frame = np.full((192, 320, 3), 90, np.uint8)
      if i >= 2:
        frame[:, 16 * i:16 * i + 192] = np.asarray(portrait)
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode(None))
  boxes = []

  class RecordingBox(SmoothedBox):
    def update(self, frame):
      boxes.append(super().update(frame))
      return boxes[-1]

  options = loop.LiveOptions(
      checkpoint=str(checkpoints['g3fa']), source=str(tmp_path / 'portrait.png'),
      driving=str(driving), out=str(tmp_path / 'session.mp4'), window=False, detect_every=1,
      smoothing=0.5, display_height=DISPLAY)
  monkeypatch.setattr(loop, 'SmoothedBox', RecordingBox)
  stats = loop.run(options, animator=animator, clock=FakeClock(), log=lambda _: None)
  assert (stats.shown, stats.dropped, stats.references) == (7, 0, [2])
  assert boxes[0] is None and boxes[1] is None
  centres = [(b[0] + b[2]) / 2 for b in boxes[2:]]
  assert all(b < a for a, b in zip(centres[1:], centres[:-1]))  # moving right, smoothed
  assert 2 * 16 + 60 < centres[0] < 2 * 16 + 130
  panels, _ = _result_panels(tmp_path / 'session.mp4')
  assert panels[0].mean() < 45 and panels[-1].mean() > 45  # the dark 'no face' panel, a face
