"""A latest-frame-only slot between a capture thread and the model.

A put replaces the frame waiting there (counted as dropped): the model always gets the newest
frame and the delay stays bounded by one model step, never a growing queue.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar('T')


class Mailbox(Generic[T]):
  """One slot: `put` (never blocks) replaces, `take` waits for an item; thread-safe."""

  def __init__(self):
    self._item: T | None = None
    self._closed = False
    self._changed = threading.Condition()
    self.dropped = 0  # Items replaced before anyone took them.
    self.arrived = 0  # Items put.

  def put(self, item: T) -> None:
    """Leaves `item` for the taker; an item still waiting is dropped (and counted)."""
    with self._changed:
      if self._item is not None:
        self.dropped += 1
      self._item = item
      self.arrived += 1
      self._changed.notify_all()

  def take(self, timeout: float | None = None) -> T | None:
    """The waiting item (emptying the slot); waits up to `timeout` seconds (None: until an item
    comes or the mailbox is closed). None if nothing came, or closed and empty."""
    with self._changed:
      self._changed.wait_for(lambda: self._item is not None or self._closed, timeout)
      item, self._item = self._item, None
      return item

  def close(self) -> None:
    """No more items: wakes a waiting `take`, which returns what is left (or None)."""
    with self._changed:
      self._closed = True
      self._changed.notify_all()

  @property
  def closed(self) -> bool:
    return self._closed
