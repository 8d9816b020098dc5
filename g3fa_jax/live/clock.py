"""Time for the live loop, injectable so that tests can run it on a simulated clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
  """Seconds on a monotonic clock, and waiting on it."""

  def now(self) -> float:
    ...

  def sleep(self, seconds: float) -> None:
    ...


class SystemClock:
  """The real clock (`time.monotonic`, `time.sleep`)."""

  def now(self) -> float:
    return time.monotonic()

  def sleep(self, seconds: float) -> None:
    if seconds > 0:
      time.sleep(seconds)
