"""A frame of a live source, and what a live frame source offers."""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np


@dataclasses.dataclass(frozen=True)
class Frame:
  """One frame as it arrived.

  Attributes:
    image: (H, W, 3) uint8 RGB.
    index: its number in the stream, from 0 (frames dropped in between keep their numbers).
    time: when it arrived, in seconds since the source started.
  """
  image: np.ndarray
  index: int
  time: float


class FrameSource(Protocol):
  """A live stream: `next()` gives the newest frame not taken yet, waiting for one if none is
  new; frames that arrived meanwhile and were never taken are `dropped`, not queued."""

  fps: float  # The nominal frame rate (frames of the stream per second).
  dropped: int  # Frames that arrived but were superseded before they were taken.
  arrived: int  # Frames that arrived so far (taken or dropped).

  def start(self) -> None:
    """Starts the stream's clock (frames arrive from now on)."""

  def next(self) -> Frame | None:
    """The newest frame not taken yet (waits for one); None when the stream has ended."""

  def close(self) -> None:
    """Stops the stream and frees what it holds."""
