"""Averages over frames, then over videos (each video weighs the same)."""

from __future__ import annotations

import collections

import numpy as np


class VideoMeans:
  """Per metric: frame values of the current video, and the finished videos' means.

  NaN frame values (e.g. AKD where no face was found) are left out of their video's mean, and
  a video without any valid value is left out of the total (counted in `skipped_videos`).
  """

  def __init__(self):
    self._frames: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    self._videos: dict[str, list[float]] = collections.defaultdict(list)
    self.frame_counts: collections.Counter = collections.Counter()
    self.missing_frames: collections.Counter = collections.Counter()
    self.skipped_videos: collections.Counter = collections.Counter()

  def add_frames(self, name: str, values) -> None:
    values = np.asarray(values, np.float64).reshape(-1)
    self._frames[name].append(values)
    self.frame_counts[name] += values.size
    self.missing_frames[name] += int(np.isnan(values).sum())

  def end_video(self) -> None:
    for name, chunks in self._frames.items():
      values = np.concatenate(chunks)
      values = values[~np.isnan(values)]
      if values.size:
        self._videos[name].append(float(values.mean()))
      else:
        self.skipped_videos[name] += 1
    self._frames.clear()

  def mean(self, name: str) -> float | None:
    """Mean over videos of the per-video means (None when no video had a value)."""
    videos = self._videos.get(name)
    return float(np.mean(videos)) if videos else None

  def num_videos(self, name: str) -> int:
    return len(self._videos.get(name, ()))
