"""Toy "face videos" in memory, for tests and smoke runs (`config.data.name='toy'`).

Each video is a coloured head-like ellipse with two eyes and a mouth on a plain background that
moves, turns and opens its mouth over time. A training sample is two frames of one video, as in the
official dataset. The global batch of step k is a pure function of (seed, k), so a resumed run sees
exactly the batches it would have seen without the interruption, whatever the number of processes.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


def _video_params(seed: int, video: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng([seed, 7919, video])
  return {
      'background': rng.uniform(0.1, 0.9, 3),
      'skin': rng.uniform(0.2, 1.0, 3),
      'eyes': rng.uniform(0.0, 0.4, 3),
      'size': rng.uniform(0.45, 0.65, 2),      # ellipse half-axes (x, y) in [-1, 1] units
      'centre': rng.uniform(-0.15, 0.15, 2),
      'motion': rng.uniform(-0.25, 0.25, 2),   # centre displacement over the clip
      'turn': rng.uniform(-0.5, 0.5),          # rotation (radians) over the clip
  }


def render_frame(params: dict[str, np.ndarray], t: float, size: int) -> np.ndarray:
  """One (size, size, 3) float32 frame in [0, 1] of a video at time t in [0, 1]."""
  coords = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
  x, y = np.meshgrid(coords, coords)
  cx, cy = params['centre'] + t * params['motion']
  angle = t * params['turn']
  c, s = np.cos(angle), np.sin(angle)
  u = c * (x - cx) + s * (y - cy)
  v = -s * (x - cx) + c * (y - cy)
  ax, ay = params['size']
  image = np.broadcast_to(params['background'], (size, size, 3)).copy()
  head = (u / ax) ** 2 + (v / ay) ** 2 <= 1
  image[head] = params['skin']
  for ex in (-0.4 * ax, 0.4 * ax):
    eye = ((u - ex) / (0.15 * ax)) ** 2 + ((v + 0.25 * ay) / (0.1 * ay)) ** 2 <= 1
    image[eye] = params['eyes']
  mouth_open = 0.03 + 0.12 * t
  mouth = (u / (0.35 * ax)) ** 2 + ((v - 0.45 * ay) / (mouth_open * ay + 1e-3)) ** 2 <= 1
  image[mouth] = params['eyes'] * 0.5
  return image.astype(np.float32)


class ToyPairs:
  """Iterator over this process's rows of the global batch: {'source', 'driving'} (b, H, W, 3).

  Rows [process_index * b, (process_index + 1) * b) of global batch k, b = batch_size //
  process_count. `get_state()` / `set_state()` save and restore the position (the next step).
  `nan_step` (>= 1): the batch of that training step (batch index nan_step - 1) is NaN, to test
  the non-finite guard.
  """

  def __init__(self, *, seed: int, num_videos: int, image_size: int, batch_size: int,
               process_index: int = 0, process_count: int = 1, start_step: int = 0,
               nan_step: int = -1):
    if batch_size % process_count:
      raise ValueError(f'batch_size {batch_size} is not a multiple of {process_count} processes')
    self.seed = int(seed)
    self.num_videos = int(num_videos)
    self.image_size = int(image_size)
    self.batch_size = int(batch_size)
    self.local_batch_size = self.batch_size // process_count
    self.process_index = int(process_index)
    self.step = int(start_step)
    self.nan_step = int(nan_step)
    self._params = [_video_params(self.seed, v) for v in range(self.num_videos)]

  def __len__(self) -> int:
    """Number of videos (one training pair per video and epoch, as the official dataset)."""
    return self.num_videos

  def global_batch(self, step: int) -> dict[str, np.ndarray]:
    """The whole batch of step `step` (every process's rows)."""
    rng = np.random.default_rng([self.seed, step])
    videos = rng.integers(0, self.num_videos, self.batch_size)
    times = rng.uniform(0, 1, (self.batch_size, 2))
    return self._render(videos, times)

  def local_batch(self, step: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([self.seed, step])
    videos = rng.integers(0, self.num_videos, self.batch_size)
    times = rng.uniform(0, 1, (self.batch_size, 2))
    rows = slice(self.process_index * self.local_batch_size,
                 (self.process_index + 1) * self.local_batch_size)
    batch = self._render(videos[rows], times[rows])
    if step == self.nan_step - 1:
      batch = {k: np.full_like(v, np.nan) for k, v in batch.items()}
    return batch

  def _render(self, videos, times) -> dict[str, np.ndarray]:
    source = np.stack([render_frame(self._params[v], t[0], self.image_size)
                       for v, t in zip(videos, times)])
    driving = np.stack([render_frame(self._params[v], t[1], self.image_size)
                        for v, t in zip(videos, times)])
    return {'source': source, 'driving': driving}

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = self.local_batch(self.step)
    self.step += 1
    return batch

  def get_state(self) -> dict[str, int]:
    return {'step': self.step}

  def set_state(self, state: dict[str, int]) -> None:
    self.step = int(state['step'])
