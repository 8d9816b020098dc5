"""Keys of a live session: from the window, or scripted for headless runs.

  r        set the reference frame to the current one (relative motion starts from it)
  q, Esc   quit

A script `'r@30,q@90'` presses `r` at stream frame 30 and `q` at frame 90: each key acts on the
first frame the model takes whose index is at least that (frames dropped meanwhile are skipped).
"""

from __future__ import annotations

import dataclasses

REFERENCE = 'r'
QUIT = 'q'
ESCAPE = '\x1b'
KNOWN = (REFERENCE, QUIT, ESCAPE)
HELP = 'r: reference frame, q/Esc: quit'


@dataclasses.dataclass(frozen=True)
class ScriptedKey:
  key: str
  frame: int


def parse_script(script: str) -> list[ScriptedKey]:
  """'r@30,q@90' -> [ScriptedKey('r', 30), ScriptedKey('q', 90)], sorted by frame; ValueError
  (one line) for anything else."""
  keys = []
  for item in filter(None, (part.strip() for part in script.split(','))):
    key, at, frame = item.partition('@')
    if not at or not frame.isdigit() or key not in (REFERENCE, QUIT):
      raise ValueError(f"--keys: {item!r} is not KEY@FRAME with KEY r or q (e.g. 'r@30,q@90')")
    keys.append(ScriptedKey(key, int(frame)))
  return sorted(keys, key=lambda k: k.frame)


class KeyScript:
  """The scripted keys due at a frame, each given once."""

  def __init__(self, keys: list[ScriptedKey]):
    self._pending = list(keys)

  def due(self, frame_index: int) -> list[str]:
    """Keys pressed at or before `frame_index` not yet given, in order."""
    due = [k.key for k in self._pending if k.frame <= frame_index]
    self._pending = [k for k in self._pending if k.frame > frame_index]
    return due
