"""Synthetic talking-head clips as records of the project's data format (no file I/O here; the
shards are written by `writer.py`).

Each clip becomes one record exactly like a prepared real clip (`g3fa_jax.data.records`), so the
training pipeline reads it unchanged, with the ground truth where the real data keeps its
optional Unsup3D geometry: `depth` (16-bit PNG of (d - DEPTH_MIN) / DEPTH_RANGE per frame) and
`normal` (16-bit PNG of (n + 1) / 2), in Unsup3D's conventions (see `render`). Background pixels
have depth `camera.BACKGROUND_DEPTH` (`foreground_mask` recovers the silhouette) and normal
(0, 0, 1). One extra field, `synthetic`, keeps the clip's generating parameters: seed, identity
and clip index, and per frame yaw/pitch/roll (degrees), mouth opening and blink.

Clip c shows identity c % identities; the last max(1, round(test_fraction * identities))
identities form the test split (identity-disjoint, like the real data).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from g3fa_jax.data import records
from g3fa_jax.synthetic import camera
from g3fa_jax.synthetic import clips as clips_lib
from g3fa_jax.synthetic import render

GENERATOR_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Settings:
  """What to generate.

  Attributes:
    videos: number of clips.
    identities: number of distinct people (0: videos // 6, at least 2; -1: one per clip).
    frames: frames per clip.
    size: frame side in pixels.
    seed: dataset seed; everything is a pure function of it and the settings.
    test_fraction: share of identities in the test split.
    fps: nominal frame rate of the motion curves.
    encoding: 'png' (lossless) or 'jpeg' frames.
    steps, shadow_steps: sphere-tracing steps (see `render`).
    records_per_shard: clips per ArrayRecord file.
  """
  videos: int = 300
  identities: int = 0
  frames: int = 32
  size: int = 64
  seed: int = 0
  test_fraction: float = 0.1
  fps: float = clips_lib.FPS
  encoding: str = 'png'
  steps: int = render.MARCH_STEPS
  shadow_steps: int = render.SHADOW_STEPS
  records_per_shard: int = 100

  @property
  def num_identities(self) -> int:
    if self.identities < 0:
      return self.videos
    return self.identities if self.identities > 0 else max(2, self.videos // 6)

  def validate(self) -> None:
    if self.videos < 1 or self.frames < 2 or self.size < 8 or self.num_identities < 1:
      raise ValueError(f'bad settings: {self}')
    if self.num_identities > self.videos:
      raise ValueError(f'{self.num_identities} identities for {self.videos} clips: some people '
                       'would have no clip (the test split could be empty); use at most one '
                       'identity per clip (identities=-1)')
    if self.encoding not in records.ENCODINGS:
      raise ValueError(f'encoding must be one of {records.ENCODINGS}')

  def fingerprint(self) -> dict[str, Any]:
    """Settings that change the stored clips (a rerun must not mix different values)."""
    out = dataclasses.asdict(self)
    out.pop('records_per_shard')
    out['identities'] = self.num_identities
    out['generator'] = f'g3fa_jax.synthetic v{GENERATOR_VERSION}'
    return out


@dataclasses.dataclass(frozen=True)
class ClipPlan:
  """Clip `clip_index` shows identity `identity_index` and belongs to `split`."""
  clip_index: int
  identity_index: int
  split: str


def held_out_identities(settings: Settings) -> range:
  """Indices of the test split's identities (none with a single identity)."""
  n = settings.num_identities
  n_test = 0 if n < 2 else min(n - 1, max(1, round(settings.test_fraction * n)))
  return range(n - n_test, n)


def plan(settings: Settings) -> list[ClipPlan]:
  """Every clip's identity and split, in clip order."""
  test = set(held_out_identities(settings))
  n = settings.num_identities
  return [ClipPlan(c, c % n, 'test' if c % n in test else 'train') for c in range(settings.videos)]


def identity_name(identity_index: int) -> str:
  return f'synth{identity_index:05d}'


def clip_key(item: ClipPlan) -> str:
  return f'{identity_name(item.identity_index)}/v{item.clip_index:05d}/00001'


def foreground_mask(depth: np.ndarray) -> np.ndarray:
  """Silhouette (bool, same shape) of stored or rendered depth maps."""
  return depth < camera.BACKGROUND_DEPTH - 0.5 * render.FAR_MARGIN


def make_record(item: ClipPlan, clip: clips_lib.Clip, rendered: dict[str, np.ndarray],
                settings: Settings) -> dict[str, Any]:
  """One rendered clip -> a record dict (`g3fa_jax.data.records` schema + `synthetic`)."""
  size = settings.size
  images = render.to_8bit(rendered['image'])
  frames = [records.encode_image(im, settings.encoding) for im in images]
  depth = [records.encode_map16(d[..., 0], records.DEPTH_MIN, records.DEPTH_RANGE)
           for d in rendered['depth']]
  normal = [records.encode_map16(n, -1., 2.) for n in rendered['normal']]
  key = clip_key(item)
  identity, video, name = key.split('/')
  r3 = lambda a: [round(float(v), 3) for v in a]
  return {
      'key': key, 'identity': identity, 'video': video, 'clip': name,
      'source': f'synthetic:seed={settings.seed}:clip={item.clip_index}',
      'num_frames': len(frames), 'fps': float(settings.fps),
      'box': [0., 0., float(size), float(size)], 'source_size': [size, size],
      'frame_size': [size, size], 'encoding': settings.encoding,
      'frames': frames, 'depth': depth, 'normal': normal,
      'synthetic': {
          'seed': settings.seed, 'identity_index': item.identity_index,
          'clip_index': item.clip_index, 'yaw': r3(clip.angles[:, 0]),
          'pitch': r3(clip.angles[:, 1]), 'roll': r3(clip.angles[:, 2]),
          'mouth': r3(clip.frames.mouth), 'blink': r3(clip.frames.blink),
          'fov': camera.FOV_DEGREES, 'background_depth': camera.BACKGROUND_DEPTH},
  }


def render_items(items: Iterable[ClipPlan], settings: Settings
                 ) -> Iterator[tuple[ClipPlan, dict[str, Any]]]:
  """(item, record dict) of each planned clip, in order.

  The next clip renders (asynchronously, JAX's dispatch) while this one is encoded.
  """
  pending = None
  for item in itertools.chain(items, [None]):
    started = None
    if item is not None:
      clip = clips_lib.make_clip(settings.seed, item.clip_index, item.identity_index,
                                 settings.frames, settings.fps)
      started = (item, clip, render.render_frames(clip.identity, clip.frames, size=settings.size,
                                                  steps=settings.steps,
                                                  shadow_steps=settings.shadow_steps))
    if pending is not None:
      done_item, done_clip, out = pending
      rendered = {k: np.asarray(v) for k, v in out.items()}
      yield done_item, make_record(done_item, done_clip, rendered, settings)
    pending = started


# Reader people and clips are numbered from here: never one of a data set's (their indices are
# below its number of clips), so a reader trained on them has seen none of the benchmark's people.
READER_INDEX_OFFSET = 1_000_000


def reader_frames(settings: Settings, clips: int, frames_per_clip: int = 8
                  ) -> dict[str, np.ndarray]:
  """Frames of `clips` clips of NEW people (one per clip, none in the data set of `settings`),
  with their ground truth, to train the fixed readers of a benchmark (pose regressor, inverse
  renderer), as AKD's landmark detector is trained on other faces than those it judges.

  Returns 'image' (N, S, S, 3) in [0, 1] (rounded to 8 bits, as stored clips are), 'angles'
  (N, 3) yaw, pitch, roll in degrees, 'depth' (N, S, S, 1) and 'normal' (N, S, S, 3); N = clips *
  frames_per_clip. A pure function of the settings' seed, size and rendering steps.
  """
  if clips < 1 or frames_per_clip < 2:
    raise ValueError(f'reader_frames: clips ({clips}) must be >= 1 and frames_per_clip '
                     f'({frames_per_clip}) >= 2')
  parts = {'image': [], 'angles': [], 'depth': [], 'normal': []}
  for c in range(clips):
    index = READER_INDEX_OFFSET + c
    clip = clips_lib.make_clip(settings.seed, index, index, frames_per_clip, settings.fps)
    out = render.render_frames(clip.identity, clip.frames, size=settings.size,
                               steps=settings.steps, shadow_steps=settings.shadow_steps)
    parts['image'].append(render.as_stored(out['image']))
    parts['angles'].append(clip.angles)
    parts['depth'].append(np.asarray(out['depth']))
    parts['normal'].append(np.asarray(out['normal']))
  return {k: np.concatenate(v).astype(np.float32) for k, v in parts.items()}


def render_item(item: ClipPlan, settings: Settings) -> dict[str, Any]:
  """Builds and renders one planned clip -> its record dict."""
  return next(render_items([item], settings))[1]


def read_geometry(record: dict[str, Any], frame_indices: Sequence[int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Depth (k, H, W, 1) and unit-ish normal (k, H, W, 3) float32 maps stored in a record."""
  if frame_indices is None:
    frame_indices = range(record['num_frames'])
  depth = np.stack([records.decode_map16(record['depth'][i], records.DEPTH_MIN,
                                         records.DEPTH_RANGE) for i in frame_indices])
  normal = np.stack([records.decode_map16(record['normal'][i], -1., 2., channels=3)
                     for i in frame_indices])
  return depth[..., None], normal
