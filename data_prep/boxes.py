"""Face boxes given by a dataset's metadata, used instead of the detector.

A boxes file maps a clip (its key, e.g. `id00012/21Uxsk56VDQ/00001`, or its source path relative
to the input root) to one face box [x0, y0, x1, y1] covering the face over the clip:
  JSON: {"id00012/21Uxsk56VDQ/00001": [x0, y0, x1, y1], ...}
  CSV:  key,x0,y0,x1,y1 per line (a header line is allowed)
Coordinates are source pixels, or fractions of the frame width/height with `normalized=True`.
The crop is then made from the box like a detected one (enlarged by `increase`, square).
"""

from __future__ import annotations

import csv
import json
import os
import pathlib

import numpy as np


def load_boxes(path: str | os.PathLike) -> dict[str, list[float]]:
  """{clip key or source path: [x0, y0, x1, y1]} from a JSON or CSV file."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'{path}: boxes file does not exist')
  boxes = {}
  if path.suffix.lower() == '.json':
    for key, box in json.loads(path.read_text()).items():
      boxes[key] = [float(v) for v in box]
  else:
    with open(path, newline='') as f:
      for row in csv.reader(f):
        if not row or row[0].startswith('#'):
          continue
        try:
          boxes[row[0].strip()] = [float(v) for v in row[1:5]]
        except ValueError:
          continue  # header
  for key, box in boxes.items():
    if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
      raise ValueError(f'{path}: box of {key!r} is not [x0, y0, x1, y1] with x1>x0, y1>y0: {box}')
  return boxes


def to_pixels(box: list[float], frame_hw: tuple[int, int], normalized: bool) -> np.ndarray:
  box = np.asarray(box, np.float64)
  if normalized:
    box = box * np.array([frame_hw[1], frame_hw[0], frame_hw[1], frame_hw[0]])
  return box
