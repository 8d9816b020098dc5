"""The main job's pictures, drawn with Pillow: the learning curve and the animation's contact sheet."""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_CURVE_COLOUR = (31, 119, 180)
_BASELINE_COLOUR = (214, 39, 40)
_AXIS_COLOUR = (60, 60, 60)
_GRID_COLOUR = (225, 225, 225)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
  """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
  span = max(high - low, 1e-12)
  raw = span / max(count, 1)
  power = 10 ** math.floor(math.log10(raw))
  step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
  start = math.floor(low / step) * step
  ticks = []
  value = start
  while value <= high + step * 1e-6:
    ticks.append(round(value, 12))
    value += step
  return ticks


def learning_curve(steps: Sequence[int], values: Sequence[float], baseline: float,
                   path: str | os.PathLike, *, title: str = 'Held-out reconstruction L1',
                   baseline_label: str = 'no motion (source frame copied)',
                   size: tuple[int, int] = (640, 400)) -> None:
  """Writes a PNG line plot of values against steps, with the baseline as a dashed line and
  each point labelled with its ratio to the baseline.

  Args:
    steps: x values (training steps), increasing.
    values: y values (e.g. held-out L1 in [0, 1]), one per step.
    baseline: y value of the horizontal reference line.
    path: where the PNG goes.
  """
  if len(steps) != len(values) or not steps:
    raise ValueError(f'learning_curve: {len(steps)} steps for {len(values)} values')
  width, height = size
  left, right, top, bottom = 70, 20, 40, 50
  font = ImageFont.load_default()
  image = Image.new('RGB', size, 'white')
  draw = ImageDraw.Draw(image)
  y_low = min(min(values), baseline) * 0.9
  y_high = max(max(values), baseline) * 1.05
  y_ticks = _nice_ticks(0.0 if y_low < 0.2 * y_high else y_low, y_high)
  y_low, y_high = min(y_ticks[0], y_low), max(y_ticks[-1], y_high)
  x_low, x_high = min(steps), max(max(steps), min(steps) + 1)
  x_ticks = [t for t in _nice_ticks(x_low, x_high) if x_low <= t <= x_high]

  def to_xy(x: float, y: float) -> tuple[float, float]:
    px = left + (x - x_low) / (x_high - x_low) * (width - left - right)
    py = height - bottom - (y - y_low) / (y_high - y_low) * (height - top - bottom)
    return px, py

  for tick in y_ticks:
    _, py = to_xy(x_low, tick)
    draw.line([(left, py), (width - right, py)], fill=_GRID_COLOUR)
    draw.text((left - 8, py), f'{tick:.3g}', fill=_AXIS_COLOUR, font=font, anchor='rm')
  for tick in x_ticks:
    px, _ = to_xy(tick, y_low)
    draw.line([(px, height - bottom), (px, height - bottom + 4)], fill=_AXIS_COLOUR)
    draw.text((px, height - bottom + 8), f'{int(tick)}', fill=_AXIS_COLOUR, font=font, anchor='mt')
  draw.rectangle([(left, top), (width - right, height - bottom)], outline=_AXIS_COLOUR)
  draw.text((width / 2, height - 14), 'training step', fill=_AXIS_COLOUR, font=font, anchor='mm')
  draw.text((width / 2, 16), title, fill=(0, 0, 0), font=font, anchor='mm')

  _, by = to_xy(x_low, baseline)
  for x0 in range(left, width - right, 12):
    draw.line([(x0, by), (min(x0 + 6, width - right), by)], fill=_BASELINE_COLOUR, width=2)
  points = [to_xy(x, y) for x, y in zip(steps, values)]
  if len(points) > 1:
    draw.line(points, fill=_CURVE_COLOUR, width=2)
  for (px, py), value in zip(points, values):
    draw.ellipse([(px - 3, py - 3), (px + 3, py + 3)], fill=_CURVE_COLOUR)
    # Each point's ratio to the baseline: near it the curve and the line are hard to tell apart.
    if baseline > 0:
      last = px > width - right - 40
      draw.text((px - 6 if last else px + 6, py + 6), f'{value / baseline:.2f}x',
                fill=_CURVE_COLOUR, font=font, anchor='rt' if last else 'lt')

  legend_x, legend_y = width - right - 250, top + 10
  draw.line([(legend_x, legend_y), (legend_x + 20, legend_y)], fill=_CURVE_COLOUR, width=2)
  draw.text((legend_x + 26, legend_y), 'G3FA (this run)', fill=(0, 0, 0), font=font, anchor='lm')
  draw.line([(legend_x, legend_y + 16), (legend_x + 20, legend_y + 16)], fill=_BASELINE_COLOUR,
            width=2)
  draw.text((legend_x + 26, legend_y + 16), f'{baseline_label}: {baseline:.4f}', fill=(0, 0, 0),
            font=font, anchor='lm')
  _save_png(image, path)


def contact_sheet(source: np.ndarray, driving: np.ndarray, generated: np.ndarray,
                  path: str | os.PathLike, *, columns: int = 8, scale: int = 2,
                  extra_rows: Sequence[np.ndarray] = ()) -> list[int]:
  """Writes a PNG: the source frame on the left, then a row of driving frames over the row of
  generated frames (and any `extra_rows` under it), at `columns` frame indices spread evenly over
  the clip.

  Args:
    source: (H, W, 3) in [0, 1].
    driving: (T, H, W, 3) in [0, 1].
    generated: (T, H, W, 3) in [0, 1], one per driving frame.
    path: where the PNG goes.
    columns: how many frames to show (at most T).
    scale: nearest-neighbour enlargement (small frames stay readable).
    extra_rows: more (T, H, W, 3) rows in [0, 1], one frame per driving frame, e.g. a reference
      to compare the generated row with.

  Returns:
    The frame indices shown.
  """
  rows_in = [generated, *extra_rows]
  if any(r.shape != driving.shape for r in rows_in) or driving.shape[1:] != source.shape:
    raise ValueError(f'contact_sheet: source {source.shape}, driving {driving.shape} and '
                     f'generated (and extra) rows {[r.shape for r in rows_in]} do not match')
  count = min(columns, len(driving))
  indices = sorted(set(np.linspace(0, len(driving) - 1, count).round().astype(int).tolist()))
  h, w = source.shape[:2]
  gap = 4
  blank = np.ones_like(source)
  rows = [[source] + [driving[i] for i in indices]]
  rows += [[blank] + [row[i] for i in indices] for row in rows_in]
  sheet = np.ones((len(rows) * (h + gap) - gap, (len(indices) + 1) * (w + gap) - gap, 3),
                  np.float32)
  for r, row in enumerate(rows):
    for c, frame in enumerate(row):
      y, x = r * (h + gap), c * (w + gap)
      sheet[y:y + h, x:x + w] = frame
  pixels = to_uint8(sheet)
  image = Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale),
                                         Image.NEAREST)
  _save_png(image, path)
  return indices


def motion_arrows(frames: np.ndarray, keypoints: np.ndarray, learnt: np.ndarray,
                  true: np.ndarray, path: str | os.PathLike, *, scale: int = 6) -> None:
  """Writes a PNG: each driving frame enlarged, with its keypoints (yellow circles), the learnt
  displacement of each (red: to the source keypoint) over the true one (green: to where the
  surface under the keypoint is in the source frame).

  Args:
    frames: (N, H, W, 3) driving frames in [0, 1].
    keypoints: (N, K, 2) driving keypoints, (x, y) in [-1, 1] (align_corners=True).
    learnt, true: (N, K, 2) displacements in the same units.
    path: where the PNG goes.
    scale: nearest-neighbour enlargement (the arrows are a few pixels of the frame).
  """
  if not (keypoints.shape == learnt.shape == true.shape and keypoints.shape[0] == len(frames)):
    raise ValueError(f'motion_arrows: frames {frames.shape}, keypoints {keypoints.shape}, '
                     f'learnt {learnt.shape} and true {true.shape} do not match')
  n, h, w = frames.shape[:3]
  gap = 4 * scale
  pixels = to_uint8(frames)
  image = Image.new('RGB', (n * w * scale + (n - 1) * gap, h * scale), (255, 255, 255))
  draw = ImageDraw.Draw(image)
  for i in range(n):
    left = i * (w * scale + gap)
    image.paste(Image.fromarray(pixels[i]).resize((w * scale, h * scale), Image.NEAREST),
                (left, 0))

    def to_px(v: np.ndarray) -> tuple[float, float]:
      return (left + (v[0] + 1) / 2 * (w - 1) * scale + scale / 2,
              (v[1] + 1) / 2 * (h - 1) * scale + scale / 2)

    for k in range(keypoints.shape[1]):
      x, y = to_px(keypoints[i, k])
      draw.line([(x, y), to_px(keypoints[i, k] + true[i, k])], fill=(0, 220, 0), width=3)
      draw.line([(x, y), to_px(keypoints[i, k] + learnt[i, k])], fill=(230, 0, 0), width=2)
      draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=(255, 255, 0))
  _save_png(image, path)


def to_uint8(frames: np.ndarray) -> np.ndarray:
  """Frames in [0, 1] (any shape) as uint8 in [0, 255], rounded."""
  return np.clip(np.round(frames * 255), 0, 255).astype(np.uint8)


def save_frame(frame: np.ndarray, path: str | os.PathLike) -> None:
  """Writes one (H, W, 3) frame in [0, 1] as an 8-bit PNG (`to_uint8`, as the videos)."""
  _save_png(Image.fromarray(to_uint8(frame)), path)


def _save_png(image: Image.Image, path: str | os.PathLike) -> None:
  """Writes next to `path` and renames, so a reader never sees half a file."""
  path = os.fspath(path)
  tmp = path + '.tmp.png'
  image.save(tmp, format='PNG')
  os.replace(tmp, path)
