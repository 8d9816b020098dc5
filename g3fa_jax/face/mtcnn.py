"""MTCNN face detector (Zhang et al. 2016) in JAX: boxes, probabilities and 5 landmarks.

The cascade follows the facenet-pytorch implementation whose weights it uses: an image pyramid
(smallest face `min_face_size` pixels, scale step 0.709) through P-Net, NMS, box regression, squared
boxes cropped and area-resized to 24x24 for R-Net, then to 48x48 for O-Net, which also gives the
landmarks. The networks run under `jax.jit`; the pyramid, crops and NMS are numpy. P-Net's inputs are
padded to a few sizes (SIZE_LADDER) and batches to powers of two, so frames of mixed sizes
share compiled programs, and `use_compilation_cache` keeps them across processes.

  boxes, probs, landmarks = detect_faces(image)   # image: (H, W, 3) uint8 RGB, or float in [0, 1]

Landmark order: left eye, right eye, nose, left mouth corner, right mouth corner (as seen in the
image: the "left" eye is the one with the smaller x in a frontal face).
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from g3fa_jax.face import mtcnn_nets

DEFAULT_WEIGHTS = pathlib.Path(__file__).with_name('mtcnn_weights.npz')
_NETS = {'pnet': mtcnn_nets.PNet, 'rnet': mtcnn_nets.RNet, 'onet': mtcnn_nets.ONet}


def load_weights(path: str | os.PathLike = DEFAULT_WEIGHTS) -> dict[str, dict]:
  """`{'pnet': variables, 'rnet': ..., 'onet': ...}` from a converted `.npz`."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no MTCNN weights (python -m g3fa_jax.convert.mtcnn --help)')
  variables = {net: {} for net in _NETS}
  with np.load(path) as data:
    for key in data.files:
      net, layer, leaf = key.split('/')
      variables[net].setdefault(layer, {})[leaf] = jnp.asarray(data[key])
  return {net: {'params': params} for net, params in variables.items()}


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """PyTorch `interpolate(mode='area')` (adaptive average pooling) of (..., H, W, C) float."""
  def pool_axis(x: np.ndarray, axis: int, out: int) -> np.ndarray:
    size = x.shape[axis]
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    csum = np.cumsum(x, axis=axis, dtype=np.float64)
    csum = np.concatenate([np.zeros_like(np.take(csum, [0], axis=axis)), csum], axis=axis)
    total = np.take(csum, end, axis=axis) - np.take(csum, start, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = out
    return (total / (end - start).reshape(shape)).astype(np.float32)
  return pool_axis(pool_axis(image, -3, height), -2, width)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = 'union',
        plus_one: bool = False) -> np.ndarray:
  """Greedy non-maximum suppression; indices kept, best score first.

  `method='union'` suppresses boxes with IoU > threshold, `'min'` uses intersection over the
  smaller area; `plus_one` measures sizes as `x2 - x1 + 1` (classic MTCNN), else `x2 - x1`.
  """
  if len(boxes) == 0:
    return np.zeros((0,), np.int64)
  x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
  one = 1.0 if plus_one else 0.0
  area = (x2 - x1 + one) * (y2 - y1 + one)
  order = np.argsort(-scores, kind='stable')
  keep = []
  while order.size:
    i, rest = order[0], order[1:]
    keep.append(i)
    w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
    h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
    inter = w * h
    if method == 'min':
      overlap = inter / np.minimum(area[i], area[rest])
    else:
      overlap = inter / (area[i] + area[rest] - inter)
    order = rest[overlap <= threshold]
  return np.asarray(keep, np.int64)


def _batched_nms(boxes, scores, groups, threshold, method='union', plus_one=False):
  """NMS independently per group (image index)."""
  keep = [np.flatnonzero(groups == g)[nms(boxes[groups == g], scores[groups == g], threshold,
                                         method, plus_one)] for g in np.unique(groups)]
  keep = np.concatenate(keep) if keep else np.zeros((0,), np.int64)
  return keep[np.argsort(-scores[keep], kind='stable')]


def _square(boxes: np.ndarray) -> np.ndarray:
  """Boxes (N, 4) -> squares of side max(w, h) with the same centre."""
  boxes = boxes.copy()
  w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
  side = np.maximum(w, h)
  boxes[:, 0] += w * 0.5 - side * 0.5
  boxes[:, 1] += h * 0.5 - side * 0.5
  boxes[:, 2] = boxes[:, 0] + side
  boxes[:, 3] = boxes[:, 1] + side
  return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
  """Applies box regression offsets, in units of the box size (`x2 - x1 + 1`)."""
  w = boxes[:, 2] - boxes[:, 0] + 1
  h = boxes[:, 3] - boxes[:, 1] + 1
  return boxes[:, :4] + reg * np.stack([w, h, w, h], axis=1)


def _bucket(n: int, least: int = 16) -> int:
  """Batch sizes rounded up to powers of two (>= least) so jit compiles few shapes."""
  return max(least, 1 << (n - 1).bit_length())


def _size_ladder(largest: int = 8192) -> tuple[int, ...]:
  """P-Net input sides: multiples of 8, each about 2^(1/4) times the last (16, 24, 32, 40, 48,
  64, 80, 96, 120, ...): images are padded to the next one, wasting ~10 % per side on average."""
  sides = [16]
  while sides[-1] < largest:
    sides.append(max(sides[-1] + 8, -(-int(sides[-1] * 2 ** 0.25 + 0.5) // 8) * 8))
  return tuple(sides)


SIZE_LADDER = _size_ladder()


def size_bucket(n: int) -> int:
  """The smallest side of SIZE_LADDER >= n (n itself beyond the ladder)."""
  index = int(np.searchsorted(SIZE_LADDER, n))
  return SIZE_LADDER[index] if index < len(SIZE_LADDER) else n


class MTCNN:
  """MTCNN detector with loaded weights and compiled networks.

  Attributes:
    min_face_size: smallest face searched for, in pixels.
    thresholds: probability thresholds of the P-, R- and O-Net stages.
    factor: scale step of the image pyramid.
    pad_shapes: run P-Net on images zero-padded to squares of a SIZE_LADDER side and batches
      padded to powers of two, so that frames of any size share a few compiled programs (one
      per ladder side and batch size; the outputs are the same); without it every pyramid
      level of every new frame size and batch compiles anew.
  """

  def __init__(self, weights: str | os.PathLike = DEFAULT_WEIGHTS, min_face_size: int = 20,
               thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
               pad_shapes: bool = True):
    self.variables = load_weights(weights)
    self.min_face_size = min_face_size
    self.thresholds = tuple(thresholds)
    self.factor = factor
    self.pad_shapes = pad_shapes
    self._apply = {name: jax.jit(functools.partial(cls().apply, self.variables[name]))
                   for name, cls in _NETS.items()}

  def _pnet(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P-Net on (B, h, w, 3) normalised images: (reg (B, h', w', 4), prob (B, h', w'))."""
    if not self.pad_shapes:
      return tuple(np.asarray(o) for o in self._apply['pnet'](jnp.asarray(images)))
    batch, height, width = images.shape[:3]
    # Square: every aspect ratio shares the programs (the padding costs less than compiling).
    side = size_bucket(max(height, width))
    padded = np.zeros((_bucket(batch, 1), side, side, 3), np.float32)
    padded[:batch, :height, :width] = images
    reg, prob = self._apply['pnet'](jnp.asarray(padded), np.array([height, width], np.int32))
    out_h, out_w = mtcnn_nets.pnet_output_size(height), mtcnn_nets.pnet_output_size(width)
    return np.asarray(reg)[:batch, :out_h, :out_w], np.asarray(prob)[:batch, :out_h, :out_w]

  def _pyramid(self, height: int, width: int) -> list[float]:
    scale = 12.0 / self.min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
      scales.append(scale)
      scale *= self.factor
      side *= self.factor
    return scales

  def _run_batched(self, name: str, crops: np.ndarray) -> tuple[np.ndarray, ...]:
    n = len(crops)
    padded = np.zeros((_bucket(n),) + crops.shape[1:], np.float32)
    padded[:n] = crops
    return tuple(np.asarray(o)[:n] for o in self._apply[name](jnp.asarray(padded)))

  def _crops(self, images: np.ndarray, boxes: np.ndarray, image_ids: np.ndarray,
             size: int) -> np.ndarray:
    """Area-resized crops of integer-truncated boxes clipped to the image, normalised."""
    height, width = images.shape[1:3]
    b = np.trunc(boxes).astype(np.int64)
    x0 = np.maximum(b[:, 0], 1) - 1
    y0 = np.maximum(b[:, 1], 1) - 1
    x1 = np.minimum(b[:, 2], width)
    y1 = np.minimum(b[:, 3], height)
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k in range(len(boxes)):
      if y1[k] > y0[k] and x1[k] > x0[k]:
        out[k] = area_resize(images[image_ids[k], y0[k]:y1[k], x0[k]:x1[k]], size, size)
    return (out - 127.5) * 0.0078125

  def detect_batch(self, images: np.ndarray
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Faces in a batch of equally sized images.

    Args:
      images: (B, H, W, 3) RGB, uint8 in [0, 255] or float in [0, 1].

    Returns:
      per image `(boxes (N, 4) float32 [x0, y0, x1, y1] pixels, probs (N,) float32,
      landmarks (N, 5, 2) float32 (x, y) pixels)`, best probability first.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'expected (B, H, W, 3) images, got shape {images.shape}')
    images = (images.astype(np.float32) * 255.0 if images.dtype.kind == 'f'
              else images.astype(np.float32))
    batch, height, width = images.shape[:3]
    empty = (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
             np.zeros((0, 5, 2), np.float32))

    # Stage 1: P-Net over the pyramid.
    cands, ids = [], []
    for scale in self._pyramid(height, width):
      scaled = area_resize(images, int(height * scale + 1), int(width * scale + 1))
      reg, prob = self._pnet((scaled - 127.5) * 0.0078125)
      b, y, x = np.nonzero(prob >= self.thresholds[0])
      if not len(b):
        continue
      corner = np.stack([x, y], axis=1).astype(np.float32)
      q1 = np.floor((2 * corner + 1) / scale)
      q2 = np.floor((2 * corner + 12) / scale)
      found = np.concatenate([q1, q2, prob[b, y, x][:, None], reg[b, y, x]], axis=1)
      keep = _batched_nms(found[:, :4], found[:, 4], b, 0.5)
      cands.append(found[keep])
      ids.append(b[keep])
    if not cands:
      return [empty] * batch
    found, ids = np.concatenate(cands), np.concatenate(ids)
    keep = _batched_nms(found[:, :4], found[:, 4], ids, 0.7)
    found, ids = found[keep], ids[keep]
    w = (found[:, 2] - found[:, 0])[:, None]
    h = (found[:, 3] - found[:, 1])[:, None]
    boxes = found[:, :4] + found[:, 5:9] * np.concatenate([w, h, w, h], axis=1)
    boxes = _square(boxes)

    # Stage 2: R-Net on 24x24 crops.
    reg, prob = self._run_batched('rnet', self._crops(images, boxes, ids, 24))
    ok = prob > self.thresholds[1]
    boxes, ids, reg, prob = boxes[ok], ids[ok], reg[ok], prob[ok]
    keep = _batched_nms(boxes, prob, ids, 0.7)
    boxes, ids, reg, prob = boxes[keep], ids[keep], reg[keep], prob[keep]
    boxes = _square(_regress(boxes, reg))
    if not len(boxes):
      return [empty] * batch

    # Stage 3: O-Net on 48x48 crops, with landmarks.
    reg, marks, prob = self._run_batched('onet', self._crops(images, boxes, ids, 48))
    ok = prob > self.thresholds[2]
    boxes, ids, reg, marks, prob = boxes[ok], ids[ok], reg[ok], marks[ok], prob[ok]
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    landmarks = np.stack([w * marks[:, :5] + boxes[:, :1] - 1,
                          h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=-1)
    boxes = _regress(boxes, reg)
    keep = _batched_nms(boxes, prob, ids, 0.7, method='min', plus_one=True)
    boxes, ids, landmarks, prob = boxes[keep], ids[keep], landmarks[keep], prob[keep]
    return [(boxes[ids == i].astype(np.float32), prob[ids == i].astype(np.float32),
             landmarks[ids == i].astype(np.float32)) for i in range(batch)]

  def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces in one (H, W, 3) image; see `detect_batch`."""
    return self.detect_batch(np.asarray(image)[None])[0]


def default_compilation_cache_dir() -> pathlib.Path:
  """`$JAX_COMPILATION_CACHE_DIR` if set, else `~/.cache/g3fa_jax/jax` (or under
  `$XDG_CACHE_HOME`)."""
  if os.environ.get('JAX_COMPILATION_CACHE_DIR'):
    return pathlib.Path(os.environ['JAX_COMPILATION_CACHE_DIR'])
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return pathlib.Path(base) / 'g3fa_jax' / 'jax'


def use_compilation_cache(directory: str | os.PathLike) -> None:
  """Keeps compiled programs in `directory` across processes (JAX's persistent compilation
  cache), so that a new run or worker loads the detector's programs instead of compiling them.

  Call it before the first compilation of the process. Every program is kept, however fast it
  compiled (MTCNN's take well under JAX's default 1 s threshold each, but there are dozens).
  """
  jax.config.update('jax_compilation_cache_dir', os.fspath(directory))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)


@functools.lru_cache(maxsize=None)
def default_detector() -> MTCNN:
  """A process-wide detector with the shipped weights and default settings."""
  return MTCNN()


def detect_faces(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Faces in one image with the shipped MTCNN weights.

  Args:
    image: (H, W, 3) RGB, uint8 in [0, 255] or float in [0, 1].

  Returns:
    boxes (N, 4) float32 [x0, y0, x1, y1] in pixels, probs (N,) float32 in [0, 1], landmarks
    (N, 5, 2) float32 (x, y) pixels (eyes, nose, mouth corners); best probability first.
  """
  return default_detector()(image)
