"""The live session: frames in, the animated face beside them on screen and in the recording.

  frame source ──(newest frame only; the rest dropped)──> smoothed face box ─> crop
      ─> LiveDriver (relative motion from the reference frame) ─> camera | result + HUD
      ─> window / mp4 recording

One frame is in flight at a time: a frame that arrives while the model works replaces the one
waiting (the camera's mailbox, or the paced video's skipping), so the delay never grows.
"""

from __future__ import annotations

import dataclasses
import fractions
import sys
from typing import Callable

import numpy as np

from g3fa_jax.animate import crop as crop_lib
from g3fa_jax.animate import pipeline
from g3fa_jax.animate import video
from g3fa_jax.live import hud
from g3fa_jax.live import keys as keys_lib
from g3fa_jax.live.camera import Camera
from g3fa_jax.live.clock import Clock, SystemClock
from g3fa_jax.live.crop_box import SmoothedBox
from g3fa_jax.live.driver import LiveDriver
from g3fa_jax.live.frames import FrameSource
from g3fa_jax.live.paced_video import PacedVideo
from g3fa_jax.media import paths

# Weight of the past in the frame-rate estimate shown on screen.
FPS_SMOOTHING = 0.8


@dataclasses.dataclass
class LiveOptions:
  """One live session (the CLI flags).

  Attributes:
    checkpoint: orbax checkpoint with `kp_detector` and `generator`.
    source: the portrait (an image, or a video whose first frame is used).
    camera: camera index (or stream URL) to read; None when `driving` is given.
    driving: a video played as if live, instead of a camera.
    out: record the session (what the window shows) to this mp4; None: no recording.
    window: show the session in an OpenCV window.
    crop: crop the source and the stream to the face (else both are used whole, resized).
    relative: relative motion from the reference frame; False: absolute keypoints.
    adapt_movement_scale: scale relative motion by the keypoint hull areas.
    keys: scripted keys, e.g. 'r@30,q@90' (see `g3fa_jax.live.keys`).
    max_frames: stop after this many stream frames (0: at the stream's end, or on q / Esc).
    detect_every: run the face detector on every n-th frame taken.
    smoothing: weight of the current face box when a detection is blended in, in [0, 1).
    crop_increase: margin around the face, a fraction of its size on every side.
    display_height: height of the view (camera | result) in pixels.
  """
  checkpoint: str
  source: str
  camera: int | str | None = None
  driving: str | None = None
  out: str | None = None
  window: bool = True
  crop: bool = True
  relative: bool = True
  adapt_movement_scale: bool = True
  keys: str = ''
  max_frames: int = 0
  detect_every: int = 5
  smoothing: float = 0.8
  crop_increase: float = crop_lib.DEFAULT_INCREASE
  display_height: int = 256


@dataclasses.dataclass
class LiveStats:
  """What a session did.

  Attributes:
    shown: frames the model animated (or showed 'no face' for), i.e. displayed and recorded.
    dropped: frames that arrived while the model was busy and were skipped.
    arrived: frames the stream delivered (shown + dropped).
    seconds: wall time of the session from the first frame on.
    latency_mean, latency_max: seconds from a frame's arrival to its result on screen.
    references: stream indices of the frames set as the motion reference.
    latencies: the latency of every frame shown, in seconds.
    interrupted: the session was ended with Ctrl+C.
    out: the recording, or None.
  """
  shown: int = 0
  dropped: int = 0
  arrived: int = 0
  seconds: float = 0.0
  latency_mean: float = 0.0
  latency_max: float = 0.0
  references: list[int] = dataclasses.field(default_factory=list)
  latencies: list[float] = dataclasses.field(default_factory=list)
  interrupted: bool = False
  out: str | None = None

  @property
  def fps(self) -> float:
    """Frames shown per second."""
    return self.shown / self.seconds if self.seconds > 0 else 0.0


class RateMeter:
  """Frames per second from the intervals between frames, exponentially smoothed."""

  def __init__(self, smoothing: float = FPS_SMOOTHING):
    self.smoothing = smoothing
    self._last: float | None = None
    self._interval: float | None = None

  def tick(self, now: float) -> float | None:
    """Records a frame at `now` (seconds); the current rate, None before two frames."""
    if self._last is not None:
      interval = now - self._last
      self._interval = interval if self._interval is None else (
          self.smoothing * self._interval + (1.0 - self.smoothing) * interval)
    self._last = now
    if not self._interval:
      return None
    return 1.0 / self._interval


def _hud_lines(rate: float | None, latency: float, source: FrameSource) -> list[str]:
  fps = f'{rate:.1f} fps' if rate else '-- fps'
  return [f'{fps}  latency {latency * 1000:.0f} ms',
          f'dropped {source.dropped} of {source.arrived}', keys_lib.HELP]


def run_session(driver: LiveDriver, source: FrameSource, clock: Clock, box: SmoothedBox | None,
                script: keys_lib.KeyScript | None = None, window=None,
                recorder: video.Mp4Writer | None = None,
                display_height: int = 256) -> LiveStats:
  """Runs the loop until the stream ends or a quit key; returns what happened.

  `box` None: frames are used whole (resized to the model's size). `window`: anything with
  `show(frame) -> key | None`. `recorder` gets every displayed frame at the slot of the stream
  frame it shows (so the recording plays in the stream's time, holding frames over the drops).
  """
  stats = LiveStats()
  source.start()
  start = clock.now()
  try:
    _loop(driver, source, clock, box, script, window, recorder, display_height, stats, start)
  except KeyboardInterrupt:  # Ctrl+C ends a headless session; what was recorded is kept.
    stats.interrupted = True
  stats.seconds = clock.now() - start
  stats.dropped, stats.arrived = source.dropped, source.arrived
  if stats.latencies:
    stats.latency_mean = float(np.mean(stats.latencies))
    stats.latency_max = float(np.max(stats.latencies))
  return stats


def _loop(driver: LiveDriver, source: FrameSource, clock: Clock, box: SmoothedBox | None,
          script: keys_lib.KeyScript | None, window, recorder: video.Mp4Writer | None,
          display_height: int, stats: LiveStats, start: float) -> None:
  """`run_session`'s loop; fills `stats` as it goes."""
  meter = RateMeter()
  pending: list[str] = []
  last_slot = -1
  while True:
    frame = source.next()
    if frame is None:
      break
    if script is not None:
      pending += script.due(frame.index)
    face_box = box.update(frame.image) if box is not None else None
    if box is not None and face_box is None:
      result = hud.message_panel('no face', driver.size)
    else:
      crop = crop_lib.crop(frame.image, face_box, driver.size)
      if keys_lib.REFERENCE in pending or driver.reference is None:
        driver.set_reference(crop)
        stats.references.append(frame.index)
      pending = [k for k in pending if k != keys_lib.REFERENCE]
      result = driver.animate(crop)
    now = clock.now() - start
    stats.latencies.append(max(0.0, now - frame.time))
    lines = _hud_lines(meter.tick(now), stats.latencies[-1], source)
    view = hud.compose(hud.camera_panel(frame.image, face_box, display_height), result, lines,
                       display_height)
    stats.shown += 1
    if recorder is not None:
      last_slot = max(int(round(frame.time * float(recorder.fps))), last_slot + 1)
      recorder.write(view, pts=[last_slot])
    if window is not None:
      key = window.show(view)
      if key is not None:
        pending.append(key.lower() if key != keys_lib.ESCAPE else key)
    if keys_lib.QUIT in pending or keys_lib.ESCAPE in pending:
      break


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def check_options(options: LiveOptions) -> None:
  """ValueError (one line naming the flag) for options no session can run with."""
  if (options.camera is None) == (options.driving is None):
    raise ValueError('give either --camera INDEX or --driving VIDEO')
  if options.detect_every < 1:
    raise ValueError(f'--detect-every must be >= 1, got {options.detect_every}')
  if not 0.0 <= options.smoothing < 1.0:
    raise ValueError(f'--smoothing must lie in [0, 1), got {options.smoothing}')
  if options.display_height < 32:
    raise ValueError(f'--display-height must be >= 32 pixels, got {options.display_height}')
  if options.max_frames < 0:
    raise ValueError(f'--max-frames must be >= 0, got {options.max_frames}')


def open_source(options: LiveOptions, clock: Clock) -> FrameSource:
  """The camera or the paced video the options name."""
  if options.driving is not None:
    return PacedVideo(options.driving, clock, options.max_frames)
  return Camera(options.camera, clock, options.max_frames)


def run(options: LiveOptions, animator=None, clock: Clock | None = None,
        make_driver: Callable[..., LiveDriver] = LiveDriver,
        log: Callable[[str], None] = _log) -> LiveStats:
  """Loads the model, crops the source, and runs a session as `options` say.

  `animator`: an already loaded one (else restored from `options.checkpoint`). `clock` and
  `make_driver` (called like `LiveDriver`) are for tests. Raises AnimateError subclasses and
  `paths.OutputPathError` with one-line messages, before anything is written.
  """
  check_options(options)
  clock = clock or SystemClock()
  script = keys_lib.KeyScript(keys_lib.parse_script(options.keys))
  # Cheap checks first: the output path, the source, the stream and the window, then the model.
  out = paths.check_output_file(options.out, '--out') if options.out else None
  source_full = video.read_source(options.source)
  stream = open_source(options, clock)
  window = recorder = None
  created: list = []
  try:
    if options.window:
      from g3fa_jax.live.window import Window  # pylint: disable=g-import-not-at-top
      window = Window()
    driver, box = _prepare(options, animator, source_full, make_driver)
    if out is not None:
      created = paths.make_dirs(out.parent)
      recorder = video.Mp4Writer(out, fractions.Fraction(stream.fps).limit_denominator(1001))
    log(f'live: {keys_lib.HELP}' if window else 'live: running headless')
    stats = run_session(driver, stream, clock, box, script, window, recorder,
                        options.display_height)
    if recorder is not None:
      recorder.close()
      stats.out = str(out)
  except BaseException:
    if recorder is not None:
      recorder.abort()
    paths.remove_empty_dirs(created)
    raise
  finally:
    stream.close()
    if window is not None:
      window.close()
  return stats


def _prepare(options: LiveOptions, animator, source_full: np.ndarray,
             make_driver: Callable[..., LiveDriver] = LiveDriver
             ) -> tuple[LiveDriver, SmoothedBox | None]:
  """The model (loaded and compiled) driving the cropped source, and the stream's face box."""
  animator = animator or pipeline.load_animator(options.checkpoint)
  size = int(animator.config.get('image_size', 256))
  detector = crop_lib.default_detector() if options.crop else None
  source_box = (crop_lib.source_box(source_full, detector, options.crop_increase,
                                    name=options.source) if options.crop else None)
  driver = make_driver(animator, crop_lib.crop(source_full, source_box, size), options.relative,
                       options.adapt_movement_scale)
  box = (SmoothedBox(detector, options.detect_every, options.smoothing, options.crop_increase)
         if options.crop else None)
  driver.warm_up()
  return driver, box
