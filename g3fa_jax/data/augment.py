"""The official training augmentations on a clip (a list of frames): flips and colour jitter.

Semantics follow the official `augmentation.py` (FOMM's): `RandomFlip` reverses the clip in time
with probability 1/2 when `time_flip` is on, and otherwise mirrors every frame with probability
1/2 when `horizontal_flip` is on; `ColorJitter` draws one brightness, contrast and saturation
factor from U[max(0, 1 - x), 1 + x] and one hue shift from U[-hue, hue] per clip and applies
torchvision's PIL operations (brightness, saturation, hue, contrast) in a random order to every
frame of the clip. Frames are (H, W, 3) uint8; randomness comes from a numpy Generator.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageEnhance


def flip_decisions(rng: np.random.Generator, time_flip: bool = False,
                   horizontal_flip: bool = False) -> tuple[bool, bool]:
  """(reverse in time, mirror horizontally): at most one, each with probability 1/2 if enabled."""
  if rng.random() < 0.5 and time_flip:
    return True, False
  return False, bool(rng.random() < 0.5 and horizontal_flip)


def random_flip(clip: Sequence[np.ndarray], rng: np.random.Generator, time_flip: bool = False,
                horizontal_flip: bool = False) -> list[np.ndarray]:
  """Time reversal or horizontal mirror of the clip, each with probability 1/2 when enabled."""
  reverse, mirror = flip_decisions(rng, time_flip, horizontal_flip)
  if reverse:
    return list(clip[::-1])
  if mirror:
    return [np.ascontiguousarray(frame[:, ::-1]) for frame in clip]
  return list(clip)


def adjust_hue(image: Image.Image, hue_factor: float) -> Image.Image:
  """torchvision's PIL `adjust_hue`: shift the HSV hue channel by hue_factor turns (uint8 wrap)."""
  h, s, v = image.convert('HSV').split()
  shift = int(np.trunc(hue_factor * 255)) % 256
  h = Image.fromarray((np.asarray(h, np.uint8) + np.uint8(shift)).astype(np.uint8), 'L')
  return Image.merge('HSV', (h, s, v)).convert('RGB')


def color_jitter(clip: Sequence[np.ndarray], rng: np.random.Generator, brightness: float = 0.1,
                 contrast: float = 0.1, saturation: float = 0.1, hue: float = 0.1
                 ) -> list[np.ndarray]:
  """The same random colour jitter on every frame of the clip (official `ColorJitter`)."""
  ops = []
  if brightness > 0:
    f = rng.uniform(max(0.0, 1 - brightness), 1 + brightness)
    ops.append(lambda im, f=f: ImageEnhance.Brightness(im).enhance(f))
  if saturation > 0:
    f = rng.uniform(max(0.0, 1 - saturation), 1 + saturation)
    ops.append(lambda im, f=f: ImageEnhance.Color(im).enhance(f))
  if hue > 0:
    f = rng.uniform(-hue, hue)
    ops.append(lambda im, f=f: adjust_hue(im, f))
  if contrast > 0:
    f = rng.uniform(max(0.0, 1 - contrast), 1 + contrast)
    ops.append(lambda im, f=f: ImageEnhance.Contrast(im).enhance(f))
  order = rng.permutation(len(ops))
  out = []
  for frame in clip:
    image = Image.fromarray(frame)
    for i in order:
      image = ops[i](image)
    out.append(np.asarray(image))
  return out
