"""Cross-identity pairs (source clip, driving clip of another identity): read, drawn, written.

A pair list is a CSV file of clip keys, one pair a line, `source,driving` (a header line with
those words is allowed; further columns are ignored). Without one, `num_pairs` pairs are drawn
from the seed: the source clip uniformly, then the driving clip uniformly among the clips of the
other identities; the same seed and test split always give the same pairs.
"""

from __future__ import annotations

import csv
import os
import pathlib
from typing import Sequence

import numpy as np


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
  """`(source_key, driving_key)` per line of a pair list file."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no such pair list')
  pairs = []
  with open(path, newline='') as f:
    for n, row in enumerate(csv.reader(f), start=1):
      row = [c.strip() for c in row]
      if not row or not any(row) or row[0].startswith('#'):
        continue
      if len(row) < 2:
        raise ValueError(f'{path}:{n}: expected `source,driving`, got {",".join(row)!r}')
      if n == 1 and row[0].lower() == 'source' and row[1].lower() == 'driving':
        continue
      pairs.append((row[0], row[1]))
  if not pairs:
    raise ValueError(f'{path}: no pairs')
  return pairs


def draw_pairs(identities: Sequence[str], num_pairs: int, seed: int) -> list[tuple[int, int]]:
  """`num_pairs` (source, driving) clip indices with different identities, from `seed`."""
  identities = np.asarray(identities)
  if len(np.unique(identities)) < 2:
    raise ValueError('cross-identity evaluation needs clips of at least two identities, the '
                     f'split has {len(np.unique(identities))}')
  rng = np.random.default_rng(seed)
  pairs = []
  for _ in range(num_pairs):
    source = int(rng.integers(len(identities)))
    others = np.flatnonzero(identities != identities[source])
    pairs.append((source, int(others[rng.integers(len(others))])))
  return pairs


def write_pairs(path: str | os.PathLike, pairs: Sequence[tuple[str, str]]) -> None:
  """Writes a pair list (with a `source,driving` header) that `read_pairs` reads back."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + '.tmp')
  with open(tmp, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['source', 'driving'])
    writer.writerows(pairs)
  os.replace(tmp, path)
