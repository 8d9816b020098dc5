"""Optional: precompute the Unsup3D depth and normal of every stored frame, beside the frames.

  python -m g3fa_jax.convert unsup3d --checkpoint checkpoint030.pth --out ckpt/unsup3d
  python -m data_prep.add_geometry --shards data/vox2 --unsup3d ckpt/unsup3d

Each record gains `depth` and `normal`: per frame a 16-bit PNG at the network's resolution
(64x64), i.e. before the official code's final bilinear resize, which training then applies to
whatever size it needs (`make_pair_dataset(..., with_geometry=True)` returns the 64x64 maps).
Quantisation error: depth 6e-6, normal 3e-5. The maps are of the stored (unjittered) frames.

Shard by shard, the records are rewritten into a temporary file that then replaces the shard,
and the manifest is marked; a rerun skips marked shards.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import sys
from typing import Any

import numpy as np

from g3fa_jax.data import index as index_lib
from g3fa_jax.data import records
from g3fa_jax.data import shards
from g3fa_jax.data import source as source_lib


def geometry_fn(renderer) -> tuple[Any, int]:
  """(jitted images (B, H, W, 3) in [0, 1] -> (depth (B, S, S, 1), normal (B, S, S, 3)), S)."""
  import jax  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models import inverse_renderer  # pylint: disable=g-import-not-at-top
  size = int(renderer.config.unsup3d.image_size)
  fn = jax.jit(functools.partial(inverse_renderer.unsup3d_depth_and_normal,
                                 renderer.network.apply, cfg=renderer.config.unsup3d,
                                 output_size=(size, size)))
  return (lambda images: tuple(np.asarray(o) for o in fn(renderer.variables, images))), size


def record_geometry(record: dict[str, Any], fn, batch_size: int) -> tuple[list, list]:
  """(depth PNGs, normal PNGs) of every frame of a record."""
  depth_png, normal_png = [], []
  frames = record['frames']
  for start in range(0, len(frames), batch_size):
    chunk = [records.decode_image(f) for f in frames[start:start + batch_size]]
    images = np.stack(chunk).astype(np.float32) / 255.0
    n = len(chunk)
    if n < batch_size:  # one compiled shape
      images = np.concatenate([images, np.zeros((batch_size - n,) + images.shape[1:],
                                                np.float32)])
    depth, normal = fn(images)
    for i in range(n):
      depth_png.append(records.encode_map16(depth[i, ..., 0], records.DEPTH_MIN,
                                            records.DEPTH_RANGE))
      normal_png.append(records.encode_map16(normal[i], -1.0, 2.0))
  return depth_png, normal_png


def add_geometry(shards_dir: str | os.PathLike, renderer, batch_size: int = 32,
                 source: str = '', progress: bool = True) -> dict[str, int]:
  """Adds depth/normal to every shard of a prepared folder; returns {'shards', 'records'}."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  out_dir = pathlib.Path(shards_dir)
  index_lib.load_index(out_dir)  # fails clearly if this is not a prepared folder
  shards.clean_unfinished(out_dir)
  fn, size = geometry_fn(renderer)
  done = {'shards': 0, 'records': 0}
  manifests = [m for m in shards.read_manifests(out_dir) if not m.get('geometry')]
  bar = None
  if progress:
    try:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      bar = tqdm(total=sum(m['num_records'] for m in manifests), unit='clip', file=sys.stderr)
    except ImportError:
      pass
  for manifest in manifests:
    path = out_dir / manifest['shard']
    tmp = path.with_name(path.name + '.geometry.tmp')
    clips = source_lib.ClipSource([path])
    writer = array_record_module.ArrayRecordWriter(str(tmp), 'group_size:1,uncompressed')
    for i in range(len(clips)):
      record = dict(clips[i])
      record['frames'] = [bytes(f) for f in record['frames']]
      record['depth'], record['normal'] = record_geometry(record, fn, batch_size)
      writer.write(records.serialize(record))
      done['records'] += 1
      if bar is not None:
        bar.update(1)
    writer.close()
    os.replace(tmp, path)
    manifest['geometry'] = {'size': size, 'source': source}
    shards.write_json_atomic(path.with_suffix('.json'), manifest)
    done['shards'] += 1
  if bar is not None:
    bar.close()
  index = index_lib.load_index(out_dir)
  shards.build_index(out_dir, index['frame_size'], index['encoding'])
  return done


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog='python -m data_prep.add_geometry', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--shards', required=True, help='output folder of data_prep.prepare')
  p.add_argument('--unsup3d', required=True,
                 help='checkpoint written by `python -m g3fa_jax.convert unsup3d`')
  p.add_argument('--batch-size', type=int, default=32)
  p.add_argument('--no-progress', action='store_true')
  args = p.parse_args(argv)
  try:
    from g3fa_jax.inference.inverse_renderer import InverseRenderer  # pylint: disable=g-import-not-at-top
    renderer = InverseRenderer.from_checkpoint(args.unsup3d)
    done = add_geometry(args.shards, renderer, args.batch_size, source=args.unsup3d,
                        progress=not args.no_progress)
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(json.dumps(done))
  return 0


if __name__ == '__main__':
  sys.exit(main())
