"""Same-identity reconstruction and cross-identity reenactment over a test split.

Same identity (Table 1): for every test video the first frame is the source and every frame
(including the first) is driven with its own keypoints, absolute; each frame's metrics are
averaged over the video, then over videos. FID compares all generated frames with all driving
frames; AKD is MTCNN's landmarks of generated vs driving frame.

Cross identity (Table 2): for each pair the source clip's first frame is animated by every frame
of the driving clip (another identity), with relative motion by default (`eval.cross_motion`);
FID compares the generated frames with the driving frames, CSIM the ArcFace embedding of each
generated frame with the source frame's, averaged over frames, then pairs.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from g3fa_jax.evaluation import accumulators
from g3fa_jax.evaluation import samples as samples_lib
from g3fa_jax.evaluation.suite import MetricSuite, Unavailable
from g3fa_jax.evaluation.videos import VideoSet
from g3fa_jax.inference import motion
from g3fa_jax.metrics import akd
from g3fa_jax.metrics import csim as csim_lib
from g3fa_jax.metrics import fid as fid_lib


@dataclasses.dataclass
class Entry:
  """One cell of the results table.

  `status` is 'ok' (value set), 'not computed' (weights missing: `note` says why, `command` makes
  them) or 'n/a' (weights present but no value, e.g. FID of a single frame; `note` says why).
  """
  value: float | None = None
  status: str = 'ok'
  note: str = ''
  command: str = ''

  @classmethod
  def missing(cls, why: Unavailable) -> 'Entry':
    return cls(None, 'not computed', why.reason, why.command)

  @classmethod
  def of(cls, value: float | None, why_none: str) -> 'Entry':
    if value is None:
      return cls(None, 'n/a', why_none)
    if not np.isfinite(value):
      return cls(None, 'n/a', f'not finite ({value})')
    return cls(float(value), 'ok')


@dataclasses.dataclass
class ProtocolResult:
  """The metrics of one protocol (table columns and extra values) and what it ran on."""
  name: str
  metrics: dict[str, Entry]
  extras: dict[str, Entry]
  num_videos: int
  num_frames: int
  seconds: float
  samples: list[np.ndarray] = dataclasses.field(default_factory=list)
  details: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def frames_per_second(self) -> float:
    return self.num_frames / self.seconds if self.seconds > 0 else 0.0


def _pad(frames: np.ndarray, size: int) -> np.ndarray:
  """Repeats the last frame so that every batch has one shape (one compilation)."""
  if len(frames) == size:
    return frames
  return np.concatenate([frames, np.repeat(frames[-1:], size - len(frames), axis=0)])


def driven_batches(animator, source: np.ndarray, frames: np.ndarray, batch_size: int,
                   relative: bool = False) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
  """Animates `source` (H, W, 3) by each of `frames` (T, H, W, 3).

  Yields `(start, n, generated, driving)` per batch: `batch_size` frames each (the last batch
  padded by repeating its last frame; only the first n are real).
  """
  kp_source = animator.keypoints(source[None])
  sources = np.broadcast_to(source, (batch_size,) + source.shape)
  kp_sources = jax.tree_util.tree_map(
      lambda a: jnp.broadcast_to(a, (batch_size,) + a.shape[1:]), kp_source)
  if relative:
    kp_initial = animator.keypoints(frames[:1])
    scale = motion.movement_scale(np.asarray(kp_source['value']),
                                  np.asarray(kp_initial['value']))[0]
  for start in range(0, len(frames), batch_size):
    driving = _pad(frames[start:start + batch_size], batch_size)
    kp_driving = animator.keypoints(driving)
    if relative:
      kp_driving = motion.relative_keypoints(kp_source, kp_driving, kp_initial,
                                             jnp.float32(scale))
    generated = np.asarray(animator.generate(sources, kp_sources, kp_driving)['prediction'])
    yield start, min(batch_size, len(frames) - start), generated, driving


class _Samples:
  """Collects a few frames of the first videos for sample grids."""

  def __init__(self, num_videos: int, num_frames: int):
    self.num_videos, self.num_frames = num_videos, num_frames
    self.grids: list[np.ndarray] = []

  def start(self, video_number: int, source: np.ndarray, length: int) -> None:
    self._active = video_number < self.num_videos
    self._source = source
    self._wanted = set(samples_lib.sample_indices(length, self.num_frames))
    self._driving, self._generated = [], []

  def add(self, start: int, n: int, generated: np.ndarray, driving: np.ndarray) -> None:
    if self._active:
      for i in range(n):
        if start + i in self._wanted:
          self._driving.append(driving[i])
          self._generated.append(generated[i])

  def end(self) -> None:
    if self._active and self._driving:
      self.grids.append(samples_lib.grid(self._source, self._driving, self._generated))


class _Tally:
  """The bookkeeping both protocols share: per-video metric means, FID statistics of generated
  (fake) and driving (real) frames, sample grids, the frame count, time and progress."""

  def __init__(self, suite: MetricSuite, cfg: ml_collections.ConfigDict, progress=None):
    self.suite = suite
    self.batch_size = cfg.batch_size
    self.progress = progress
    self.means = accumulators.VideoMeans()
    self.real, self.fake = fid_lib.FeatureStatistics(), fid_lib.FeatureStatistics()
    self.samples = _Samples(cfg.num_sample_videos, cfg.num_sample_frames)
    self.num_frames = 0
    self._start_time = time.time()

  def video(self, animator, number: int, source: np.ndarray, frames: np.ndarray,
            relative: bool = False) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Animates `source` (H, W, 3) by `frames` (T, H, W, 3), video number `number`.

    Yields `(n, generated, driving)` per batch (see `driven_batches`) for the protocol's own
    metrics, then records the batch's FID features, sample frames and count; at the end of the
    video, its means and sample grid.
    """
    self.samples.start(number, source, len(frames))
    for start, n, generated, driving in driven_batches(animator, source, frames,
                                                       self.batch_size, relative):
      yield n, generated, driving
      if self.suite.has_fid:
        features = self.suite.fid_features(np.concatenate([generated, driving]))
        self.fake.update(features[:n])
        self.real.update(features[self.batch_size:self.batch_size + n])
      self.samples.add(start, n, generated, driving)
      self.num_frames += n
      if self.progress is not None:
        self.progress.update(n)
    self.means.end_video()
    self.samples.end()

  @property
  def seconds(self) -> float:
    return time.time() - self._start_time

  def fid(self) -> Entry:
    """FID of the generated frames against the driving frames."""
    if not self.suite.has_fid:
      return Entry.missing(self.suite.unavailable['fid'])
    if self.real.count < 2:
      return Entry(None, 'n/a', f'FID needs at least 2 frames, got {self.real.count}')
    return Entry(fid_lib.fid_from_statistics(self.real, self.fake))


def same_identity(animator, videos: VideoSet, suite: MetricSuite,
                  cfg: ml_collections.ConfigDict, progress=None) -> ProtocolResult:
  """Table 1 on the split's videos (the first `cfg.max_videos`, `cfg.max_frames` frames each)."""
  chosen = videos.videos if cfg.max_videos <= 0 else videos.videos[:cfg.max_videos]
  tally = _Tally(suite, cfg, progress)
  acc = tally.means
  for number, video in enumerate(chosen):
    frames = videos.frames(video, cfg.max_frames)
    for n, generated, driving in tally.video(animator, number, frames[0], frames):
      for name, values in suite.frame_metrics(generated, driving).items():
        acc.add_frames(name, values[:n])
      if suite.has_akd:
        marks = suite.landmarks(np.concatenate([generated[:n], driving[:n]]))
        acc.add_frames('akd', akd.keypoint_distance(marks[:n], marks[n:]))
  seconds = tally.seconds

  lpips_columns = {}
  for net in [n.strip() for n in str(cfg.lpips_nets).split(',') if n.strip()]:
    key = f'lpips_{net}'
    if net in suite.lpips_nets:
      lpips_columns[net] = Entry.of(acc.mean(key), 'no frames')
    elif key in suite.unavailable:
      lpips_columns[net] = Entry.missing(suite.unavailable[key])
  first = next(iter(lpips_columns), None)
  metrics = {
      'L1': Entry.of(acc.mean('l1'), 'no frames'),
      'LPIPS': (lpips_columns[first] if first else
                Entry(None, 'not computed', 'eval.lpips_nets is empty')),
      'PSNR': Entry.of(acc.mean('psnr'), 'no frames'),
      'SSIM': Entry.of(acc.mean('ssim'), 'no frames'),
      'FID': tally.fid(),
      'AKD': (Entry.of(acc.mean('akd'), 'no face found by MTCNN in any frame pair')
              if suite.has_akd else Entry.missing(suite.unavailable['akd'])),
  }
  extras = {f'LPIPS ({name})': entry for name, entry in lpips_columns.items() if name != first}
  details = {'lpips_net': first or ''}
  if suite.has_akd:
    total = acc.frame_counts['akd']
    missing = acc.missing_frames['akd']
    extras['AKD missing-face rate'] = Entry(missing / total if total else None,
                                            'ok' if total else 'n/a')
    details['akd_frames_without_face'] = missing
  return ProtocolResult('same_identity', metrics, extras, len(chosen), tally.num_frames, seconds,
                        tally.samples.grids, details)


def cross_identity(animator, videos: VideoSet, suite: MetricSuite,
                   cfg: ml_collections.ConfigDict, pairs: Sequence[tuple[int, int]],
                   progress=None) -> ProtocolResult:
  """Table 2 on `pairs` of (source, driving) clip indices."""
  relative = cfg.cross_motion == 'relative'
  if cfg.cross_motion not in ('relative', 'absolute'):
    raise ValueError(f"eval.cross_motion must be 'relative' or 'absolute', got "
                     f'{cfg.cross_motion!r}')
  tally = _Tally(suite, cfg, progress)
  acc = tally.means
  misses = 0
  for number, (s, d) in enumerate(pairs):
    source = videos.frames(videos.videos[s], 1)[0]
    frames = videos.frames(videos.videos[d], cfg.max_frames)
    if suite.has_csim:
      # The source repeated to a full batch: one compiled shape for sources and frames.
      source_embedding, miss = suite.identity_embeddings(
          np.broadcast_to(source, (cfg.batch_size,) + source.shape), n=1)
      misses += miss
    for n, generated, _ in tally.video(animator, number, source, frames, relative):
      if suite.has_csim:
        embeddings, miss = suite.identity_embeddings(generated, n=n)
        misses += miss
        acc.add_frames('csim', np.asarray(csim_lib.cosine_similarity(
            jnp.asarray(embeddings), jnp.asarray(source_embedding))))
  seconds = tally.seconds
  metrics = {
      'FID': tally.fid(),
      'CSIM': (Entry.of(acc.mean('csim'), 'no frames') if suite.has_csim
               else Entry.missing(suite.unavailable['csim'])),
  }
  extras = {}
  if suite.has_csim:
    checked = acc.frame_counts['csim'] + len(pairs)
    extras['CSIM frames without a detected face (resized, not aligned)'] = Entry(
        misses / checked if checked else None, 'ok' if checked else 'n/a')
  return ProtocolResult('cross_identity', metrics, extras, len(pairs), tally.num_frames, seconds,
                        tally.samples.grids, {'motion': cfg.cross_motion})
