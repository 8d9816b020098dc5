"""grain transforms: a group of clips -> a (source, driving) frame pair -> float32 batches."""

from __future__ import annotations

import dataclasses
from typing import Any

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


class SamplePair(grain.transforms.RandomMap):
  """Group of record indices -> {'source', 'driving'} (H, W, 3) uint8.

  Reads one random clip of the group, decodes only the two sampled frames, then applies the
  augmentation to the pair as a two-frame clip (official order: flips, then colour jitter).
  With `with_geometry`, adds the stored Unsup3D maps of the two frames: 'source_depth',
  'driving_depth' (S, S, 1) and 'source_normal', 'driving_normal' (S, S, 3) float32 (flipped
  with the frames; a mirror negates the normals' x). With `with_record_index`, adds 'record'.
  """

  def __init__(self, clips: source_lib.ClipSource | source_lib.TfdsClipSource,
               augmentation: Augmentation = Augmentation(),
               distinct: bool = True, with_record_index: bool = False,
               with_geometry: bool = False):
    self.clips = clips
    self.augmentation = augmentation
    self.distinct = distinct
    self.with_record_index = with_record_index
    self.with_geometry = with_geometry

  def random_map(self, element: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    group = np.asarray(element)
    record_index = int(group[rng.integers(len(group))]) if len(group) > 1 else int(group[0])
    record = self.clips[record_index]
    idx = sample_frame_indices(len(record['frames']), rng, self.distinct)
    a = self.augmentation
    reverse, mirror = augment.flip_decisions(rng, a.time_flip, a.horizontal_flip)
    if reverse:
      idx = idx[::-1]
    pair = [records.decode_image(record['frames'][i]) for i in idx]
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
        depth = records.decode_map16(record['depth'][i], records.DEPTH_MIN, records.DEPTH_RANGE)
        normal = records.decode_map16(record['normal'][i], -1.0, 2.0, channels=3)
        if mirror:
          depth, normal = depth[:, ::-1], normal[:, ::-1] * np.float32([-1, 1, 1])
        out[f'{name}_depth'] = np.ascontiguousarray(depth[..., None], np.float32)
        out[f'{name}_normal'] = np.ascontiguousarray(normal, np.float32)
    if self.with_record_index:
      out['record'] = np.int64(record_index)
    return out


class ToFloat(grain.transforms.Map):
  """uint8 images in a batch -> float32 in [0, 1] (other entries unchanged)."""

  def map(self, element: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: (v.astype(np.float32) / np.float32(255) if v.dtype == np.uint8 else v)
            for k, v in element.items()}
