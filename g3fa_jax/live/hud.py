"""The live view: camera | animated face, with the crop box and a few lines of text on it."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from g3fa_jax.animate import side_by_side

BOX_COLOUR = (60, 220, 90)
TEXT_COLOUR = (255, 255, 255)
SHADE = (0, 0, 0, 150)


def _font(size: int):
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow without FreeType: the fixed bitmap font.
    return ImageFont.load_default()


def camera_panel(frame: np.ndarray, box: Sequence[float] | None, height: int) -> np.ndarray:
  """The (H, W, 3) uint8 camera frame scaled to `height`, with the crop box drawn."""
  scale = height / frame.shape[0]
  width = max(1, int(round(frame.shape[1] * scale)))
  image = Image.fromarray(frame).resize((width, height), Image.BILINEAR)
  if box is not None:
    draw = ImageDraw.Draw(image)
    draw.rectangle([float(v) * scale for v in box], outline=BOX_COLOUR,
                   width=max(1, height // 128))
  return np.asarray(image)


def message_panel(text: str, size: int) -> np.ndarray:
  """A (size, size, 3) dark panel saying `text` (e.g. while no face is found)."""
  image = Image.new('RGB', (size, size), (30, 30, 30))
  draw = ImageDraw.Draw(image)
  font = _font(max(10, size // 14))
  width = draw.textlength(text, font=font)
  draw.text(((size - width) / 2, size / 2 - size // 28), text, fill=TEXT_COLOUR, font=font)
  return np.asarray(image)


def compose(camera: np.ndarray, result: np.ndarray, lines: Sequence[str],
            height: int) -> np.ndarray:
  """camera | result at `height` (result upscaled), `lines` of text in the top-left corner."""
  result = np.asarray(Image.fromarray(result).resize((height, height), Image.BICUBIC))
  view = Image.fromarray(side_by_side.compose([camera, result]))
  if lines:
    font = _font(max(10, height // 20))
    draw = ImageDraw.Draw(view, 'RGBA')
    line_height = font.getbbox('Ag')[3] + 4
    width = max(draw.textlength(line, font=font) for line in lines)
    draw.rectangle([0, 0, width + 8, line_height * len(lines) + 6], fill=SHADE)
    for i, line in enumerate(lines):
      draw.text((4, 3 + i * line_height), line, fill=TEXT_COLOUR, font=font)
  return np.asarray(view)
