"""grain transforms: a group of clips -> a (source, driving) frame pair -> float32 batches.

With `skip_bad=True` a pair that cannot be made (a record that cannot be read or parsed, frame
counts that disagree, a frame that does not decode) is replaced by another draw, and the pair
says so: `BAD_COUNT` (int32, failed draws before it) and `BAD_NOTES` (str, one line per failed
draw naming the shard, record, clip and frame), which the training loop counts and logs.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence

import grain
import numpy as np

from g3fa_jax.data import augment
from g3fa_jax.data import records
from g3fa_jax.data import source as source_lib


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Official `augmentation_params`: colour jitter on (0.1 each), flips off.

  Attributes:
    brightness, contrast, saturation, hue: jitter strengths (0 disables one; all 0 disables it).
    horizontal_flip: mirror the pair with probability 1/2.
    time_flip: swap source and driving with probability 1/2.
  """
  brightness: float = 0.1
  contrast: float = 0.1
  saturation: float = 0.1
  hue: float = 0.1
  horizontal_flip: bool = False
  time_flip: bool = False


def sample_frame_indices(num_frames: int, rng: np.random.Generator, distinct: bool = True
                         ) -> np.ndarray:
  """Two sorted frame indices of a clip; different frames when `distinct` and T >= 2.

  The official loader draws with replacement (`distinct=False`), so it may pair a frame with
  itself.
  """
  replace = not distinct or num_frames < 2
  return np.sort(rng.choice(num_frames, size=2, replace=replace))


BAD_COUNT = 'bad_pairs'
BAD_NOTES = 'bad_notes'
MAX_DRAWS = 16  # A pair that fails this many draws in a row stops the input: the data is broken.


# (record, frame indices, mirrored) -> (len(frame indices), L, 2) landmarks in [-1, 1].
LandmarksOf = Callable[[dict[str, Any], Sequence[int], bool], np.ndarray]


class BadRecordError(ValueError):
  """A pair could not be made from a record; the message names the shard, record and frame."""


class SamplePair(grain.transforms.RandomMap):
  """Group of record indices -> {'source', 'driving'} (H, W, 3) uint8.

  Reads one random clip of the group, decodes only the two sampled frames, then applies the
  augmentation to the pair as a two-frame clip (official order: flips, then colour jitter).
  With `with_geometry`, adds the stored Unsup3D maps of the two frames: 'source_depth',
  'driving_depth' (S, S, 1) and 'source_normal', 'driving_normal' (S, S, 3) float32 (flipped
  with the frames; a mirror negates the normals' x). With `landmarks_of`, a function
  (record, frame indices, mirrored) -> (2, L, 2) such as
  `g3fa_jax.synthetic.landmarks.pair_landmarks`, adds 'source_landmarks', 'driving_landmarks'
  (L, 2) float32 in [-1, 1] (x, y), the two frames' facial landmarks (the draws are those
  without it). With `with_record_index`, adds 'record'.
  With `skip_bad`, a pair that fails is drawn again from a random record of the whole split
  (up to `MAX_DRAWS` times) and `BAD_COUNT` / `BAD_NOTES` are added (see the module doc);
  without it the first failure raises `BadRecordError`.
  """

  def __init__(self, clips: source_lib.ClipSource | source_lib.TfdsClipSource,
               augmentation: Augmentation = Augmentation(),
               distinct: bool = True, with_record_index: bool = False,
               with_geometry: bool = False, skip_bad: bool = False,
               landmarks_of: Optional[LandmarksOf] = None):
    self.clips = clips
    self.landmarks_of = landmarks_of
    self.augmentation = augmentation
    self.distinct = distinct
    self.with_record_index = with_record_index
    self.with_geometry = with_geometry
    self.skip_bad = skip_bad

  def random_map(self, element: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    group = np.asarray(element)
    notes = []
    while True:
      try:
        out = self._pair(group, rng)
        break
      except BadRecordError as e:
        if not self.skip_bad:
          raise
        notes.append(str(e))
        if len(notes) >= MAX_DRAWS:
          raise BadRecordError(f'{MAX_DRAWS} draws in a row failed, the data looks broken; '
                               f'the last: {e}') from e
        group = np.asarray([rng.integers(len(self.clips))], np.int64)
    if self.skip_bad:
      out[BAD_COUNT] = np.int32(len(notes))
      out[BAD_NOTES] = '\n'.join(notes)
    return out

  def _read(self, record_index: int) -> dict[str, Any]:
    try:
      return self.clips.checked(record_index)
    except Exception as e:  # pylint: disable=broad-except
      # Anything a damaged record raises (ArrayRecord, msgpack, struct, the checks) is its fault.
      raise BadRecordError(f'{self.clips.locate(record_index)}: unreadable record '
                           f'({type(e).__name__}: {_first_line(e)})') from e

  def _decode(self, record: dict[str, Any], record_index: int, name: str, frame: int,
              decode: Callable[[memoryview], np.ndarray]) -> np.ndarray:
    """`decode` of item `frame` of the record's `name` list ('frames', 'depth', 'normal')."""
    try:
      return decode(record[name][frame])
    except Exception as e:  # pylint: disable=broad-except
      what = 'frame' if name == 'frames' else f'{name} map of frame'
      raise BadRecordError(f'{self.clips.locate(record_index)} (clip {record.get("key")!r}), '
                           f'{what} {frame}: cannot decode ({type(e).__name__}: '
                           f'{_first_line(e)})') from e

  def _pair(self, group: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    record_index = int(group[rng.integers(len(group))]) if len(group) > 1 else int(group[0])
    record = self._read(record_index)
    idx = sample_frame_indices(len(record['frames']), rng, self.distinct)
    a = self.augmentation
    reverse, mirror = augment.flip_decisions(rng, a.time_flip, a.horizontal_flip)
    if reverse:
      idx = idx[::-1]
    pair = [self._decode(record, record_index, 'frames', int(i), records.decode_image)
            for i in idx]
    if mirror:
      pair = [np.ascontiguousarray(f[:, ::-1]) for f in pair]
    if max(a.brightness, a.contrast, a.saturation, a.hue) > 0:
      pair = augment.color_jitter(pair, rng, a.brightness, a.contrast, a.saturation, a.hue)
    out = {'source': pair[0], 'driving': pair[1]}
    if self.with_geometry:
      if 'depth' not in record:
        raise ValueError(f'clip {record["key"]!r} has no depth/normal maps; run '
                         '`python -m data_prep.add_geometry` on the shards')
      for name, i in zip(('source', 'driving'), idx):
        depth = self._decode(record, record_index, 'depth', int(i), functools.partial(
            records.decode_map16, low=records.DEPTH_MIN, span=records.DEPTH_RANGE))
        normal = self._decode(record, record_index, 'normal', int(i), functools.partial(
            records.decode_map16, low=-1.0, span=2.0, channels=3))
        if mirror:
          depth, normal = depth[:, ::-1], normal[:, ::-1] * np.float32([-1, 1, 1])
        out[f'{name}_depth'] = np.ascontiguousarray(depth[..., None], np.float32)
        out[f'{name}_normal'] = np.ascontiguousarray(normal, np.float32)
    if self.landmarks_of is not None:
      marks = self.landmarks_of(record, [int(i) for i in idx], bool(mirror))
      out['source_landmarks'], out['driving_landmarks'] = marks[0], marks[1]
    if self.with_record_index:
      out['record'] = np.int64(record_index)
    return out


def _first_line(error: BaseException) -> str:
  lines = str(error).strip().splitlines()
  return lines[0][:200] if lines else ''


class ToFloat(grain.transforms.Map):
  """uint8 images in a batch -> float32 in [0, 1] (other entries unchanged)."""

  def map(self, element: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: (v.astype(np.float32) / np.float32(255) if v.dtype == np.uint8 else v)
            for k, v in element.items()}
