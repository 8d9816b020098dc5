"""One ArrayRecord record = one face video clip: encoded frames plus metadata.

Byte layout: `b'G3FC'`, a little-endian uint32 header length, the header (msgpack map: the
metadata below plus `offsets`, per payload list the T + 1 offsets of its items), then the
payloads (the encoded frames, back to back). Parsing reads only the header; items are zero-copy
memoryview slices, so a sample that needs two frames touches two frames.

Fields (`deserialize` returns them as a dict):

  key          str    unique clip key, e.g. 'id00012/21Uxsk56VDQ/00001'
  identity     str    speaker identity (the split is disjoint in it)
  video, clip  str    source video and clip names
  source       str    path of the source file or frame folder, relative to the input root
  num_frames   int    T
  fps          float  frames per second of the source (25 when unknown)
  box          [4]    crop box [x0, y0, x1, y1] in source pixels (float)
  source_size  [2]    source frame (height, width)
  frame_size   [2]    stored frame (height, width)
  encoding     str    'jpeg' or 'png'
  frames       [T]    encoded RGB frames (bytes)
  depth        [T]    optional: Unsup3D depth per frame, 16-bit PNG of (d - DEPTH_MIN) / DEPTH_RANGE
  normal       [T]    optional: Unsup3D normal per frame, 16-bit PNG of (n + 1) / 2 (3 channels)

Only the frames a sample needs are decoded (`decode_image`), which is what makes a training pair
cheap compared with decoding a whole mp4.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Mapping, Sequence

import msgpack
import numpy as np
from PIL import Image

ENCODINGS = ('jpeg', 'png')
METADATA_FIELDS = ('key', 'identity', 'video', 'clip', 'source', 'num_frames', 'fps', 'box',
                   'source_size', 'frame_size', 'encoding')
# Geometry maps are stored as 16-bit PNG over a fixed range (depth lies in [0.9, 1.1] by design).
DEPTH_MIN, DEPTH_RANGE = 0.8, 0.4


def encode_image(image: np.ndarray, encoding: str = 'jpeg', quality: int = 95) -> bytes:
  """(H, W, 3) uint8 RGB -> JPEG (given quality) or PNG bytes."""
  if encoding not in ENCODINGS:
    raise ValueError(f'unknown frame encoding {encoding!r}; use one of {ENCODINGS}')
  buffer = io.BytesIO()
  if encoding == 'jpeg':
    Image.fromarray(image).save(buffer, format='JPEG', quality=quality)
  else:
    Image.fromarray(image).save(buffer, format='PNG', compress_level=1)
  return buffer.getvalue()


def decode_image(data: bytes | memoryview) -> np.ndarray:
  """JPEG/PNG bytes -> (H, W, 3) uint8 RGB."""
  with Image.open(io.BytesIO(data)) as image:
    if image.mode != 'RGB':
      image = image.convert('RGB')
    return np.asarray(image)


def encode_map16(values: np.ndarray, low: float, span: float) -> bytes:
  """(H, W) or (H, W, 3) float map in [low, low + span] -> 16-bit PNG bytes."""
  q = np.clip(np.round((np.asarray(values, np.float64) - low) / span * 65535.0), 0, 65535)
  q = q.astype(np.uint16)
  buffer = io.BytesIO()
  if q.ndim == 2:
    Image.fromarray(q).save(buffer, format='PNG', compress_level=1)
  else:  # PIL has no 16-bit RGB mode: store the channels side by side as one gray image
    Image.fromarray(np.concatenate([q[..., c] for c in range(q.shape[-1])], axis=1)).save(
        buffer, format='PNG', compress_level=1)
  return buffer.getvalue()


def decode_map16(data: bytes | memoryview, low: float, span: float, channels: int = 1) -> np.ndarray:
  """Inverse of `encode_map16`: float32 (H, W) for one channel, else (H, W, C)."""
  with Image.open(io.BytesIO(data)) as image:
    q = np.asarray(image).astype(np.float32)
  values = q / 65535.0 * span + low
  if channels == 1:
    return values
  return np.stack(np.split(values, channels, axis=1), axis=-1)


PAYLOADS = ('frames', 'depth', 'normal')
MAGIC = b'G3FC'


class EncodedItems(Sequence[memoryview]):
  """A record's list of encoded items (frames, depth or normal maps), sliced lazily."""

  def __init__(self, payload: memoryview, offsets: Sequence[int]):
    self._payload = payload
    self._offsets = offsets

  def __len__(self) -> int:
    return len(self._offsets) - 1

  def offsets_valid(self) -> bool:
    """Every item is non-empty and inside the payload (false for a damaged header)."""
    offsets = np.asarray(self._offsets)
    return bool(np.all(np.diff(offsets) > 0) and offsets[0] >= 0
                and offsets[-1] <= len(self._payload))

  def __getitem__(self, i):
    if isinstance(i, slice):
      return [self[j] for j in range(*i.indices(len(self)))]
    if i < 0:
      i += len(self)
    if not 0 <= i < len(self):
      raise IndexError(i)
    return self._payload[self._offsets[i]:self._offsets[i + 1]]


def serialize(record: Mapping[str, Any]) -> bytes:
  """A record dict (see module doc) -> bytes for ArrayRecord."""
  missing = [f for f in METADATA_FIELDS + ('frames',) if f not in record]
  if missing:
    raise ValueError(f'record {record.get("key", "?")!r} misses fields {missing}')
  if len(record['frames']) != record['num_frames']:
    raise ValueError(f'record {record["key"]!r}: {len(record["frames"])} frames, '
                     f'num_frames says {record["num_frames"]}')
  header = {k: v for k, v in record.items() if k not in PAYLOADS}
  header['offsets'] = {}
  chunks, position = [], 0
  for name in PAYLOADS:
    if name not in record:
      continue
    if len(record[name]) != record['num_frames']:
      raise ValueError(f'record {record["key"]!r}: {len(record[name])} {name} items for '
                       f'{record["num_frames"]} frames')
    offsets = [position]
    for item in record[name]:
      chunks.append(bytes(item))
      position += len(item)
      offsets.append(position)
    header['offsets'][name] = offsets
  head = msgpack.packb(header, use_bin_type=True)
  return b''.join([MAGIC, struct.pack('<I', len(head)), head] + chunks)


def deserialize(data: bytes) -> dict[str, Any]:
  """Bytes from ArrayRecord -> the record dict; payload items are lazy memoryview slices."""
  view = memoryview(data)
  if bytes(view[:4]) != MAGIC:
    raise ValueError('not a g3fa-jax clip record (bad magic bytes)')
  (length,) = struct.unpack('<I', view[4:8])
  header = msgpack.unpackb(view[8:8 + length], raw=False)
  payload = view[8 + length:]
  for name, offsets in header.pop('offsets').items():
    header[name] = EncodedItems(payload, offsets)
  return header


def check_consistent(record: Mapping[str, Any], expected_frames: int | None = None) -> None:
  """Raises ValueError naming the fault when a record's frame counts disagree: `num_frames`
  against its frame list (and its depth / normal lists, and `expected_frames`, the count the
  split's index holds), or item offsets that run backwards or past the payload."""
  if 'frames' not in record or 'num_frames' not in record:
    raise ValueError(f'no {"frames" if "frames" not in record else "num_frames"} field')
  count = record['num_frames']
  if expected_frames is not None and count != expected_frames:
    raise ValueError(f'num_frames={count} but the split index says {expected_frames} frames')
  for name in PAYLOADS:
    items = record.get(name)
    if items is None:
      continue
    if len(items) != count:
      raise ValueError(f'num_frames={count} but {len(items)} {name} items')
    if isinstance(items, EncodedItems) and not items.offsets_valid():
      raise ValueError(f'{name} offsets out of order or past the end of the payload')


def metadata(record: Mapping[str, Any]) -> dict[str, Any]:
  """The record without its frame payloads."""
  return {k: record[k] for k in METADATA_FIELDS if k in record}
