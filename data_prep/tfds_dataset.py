"""TFDS dataset `face_videos` (ArrayRecord file format) built from prepared shards.

  python -m data_prep.tfds_dataset --shards data/vox2 --data-dir ~/tensorflow_datasets

copies the clips of `data_prep.prepare`'s output (frames stay encoded, not re-compressed) into a
TFDS dataset, which then opens the TFDS way, also without TensorFlow:

  import tensorflow_datasets as tfds
  source = tfds.data_source('face_videos/256px_jpeg', data_dir=...)   # random access, grain-ready
  source['train'][0]['frames']   # (T, 256, 256, 3) uint8 (decodes every frame: slow)

For training, `g3fa_jax.data.source.TfdsClipSource` keeps the frames encoded and decodes only the
two a pair needs (`make_pair_dataset(..., tfds_name='face_videos/256px_jpeg')`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from g3fa_jax.data import index as index_lib
from g3fa_jax.data import source as source_lib
from g3fa_jax.media import paths


@dataclasses.dataclass
class FaceVideosConfig(tfds.core.BuilderConfig):
  """Frame size and encoding of the prepared shards (they must match)."""
  size: int = 256
  encoding: str = 'jpeg'


def config_for(size: int, encoding: str) -> FaceVideosConfig:
  return FaceVideosConfig(name=f'{size}px_{encoding}', size=size, encoding=encoding,
                          description=f'{size}x{size} face crops, {encoding} frames')


class FaceVideos(tfds.core.GeneratorBasedBuilder):
  """Face video clips (one example per clip) prepared by `python -m data_prep.prepare`."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First version.'}
  BUILDER_CONFIGS = [config_for(256, 'jpeg'), config_for(256, 'png'), config_for(512, 'jpeg')]
  MANUAL_DOWNLOAD_INSTRUCTIONS = ('Run `python -m data_prep.prepare` and pass its output folder '
                                  'as the manual dir (`--shards` of this module).')

  # tfds finds a builder's folder through `importlib_resources`, which it does not install.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    size, encoding = self.builder_config.size, self.builder_config.encoding
    return tfds.core.DatasetInfo(
        builder=self,
        description='Cropped talking-face video clips with identity metadata.',
        features=tfds.features.FeaturesDict({
            'frames': tfds.features.Sequence(
                tfds.features.Image(shape=(size, size, 3), encoding_format=encoding)),
            'key': tfds.features.Text(),
            'identity': tfds.features.Text(),
            'video': tfds.features.Text(),
            'clip': tfds.features.Text(),
            'source': tfds.features.Text(),
            'num_frames': tfds.features.Scalar(dtype=np.int32),
            'fps': tfds.features.Scalar(dtype=np.float32),
            'box': tfds.features.Tensor(shape=(4,), dtype=np.float32),
            'source_size': tfds.features.Tensor(shape=(2,), dtype=np.int32),
        }),
        supervised_keys=None,
    )

  def _split_generators(self, dl_manager):
    shards_dir = dl_manager.manual_dir
    index = index_lib.load_index(shards_dir)
    expected = [self.builder_config.size] * 2
    if index['frame_size'] != expected or index['encoding'] != self.builder_config.encoding:
      raise ValueError(f'{shards_dir}: frames are {index["frame_size"]} {index["encoding"]}, '
                       f'config {self.builder_config.name} expects {expected} '
                       f'{self.builder_config.encoding}')
    return {split: self._generate_examples(os.fspath(shards_dir), split)
            for split in sorted(index['splits'])}

  def _generate_examples(self, shards_dir: str, split: str):
    clips = source_lib.ClipSource.from_dir(shards_dir, split)
    for i in range(len(clips)):
      r = clips[i]
      yield r['key'], {
          'frames': [bytes(f) for f in r['frames']],
          'key': r['key'], 'identity': r['identity'], 'video': r['video'], 'clip': r['clip'],
          'source': r['source'], 'num_frames': r['num_frames'], 'fps': r['fps'],
          'box': np.asarray(r['box'], np.float32),
          'source_size': np.asarray(r['source_size'], np.int32),
      }


def builder_config(size: int, encoding: str) -> FaceVideosConfig | str:
  """The config of shards of `size` px `encoding` frames: a registered one by its name (TFDS
  refuses a new config object named like a registered one), else a new one."""
  config = config_for(size, encoding)
  registered = {c.name for c in FaceVideos.BUILDER_CONFIGS}
  return config.name if config.name in registered else config


def build(shards_dir: str | os.PathLike, data_dir: str | os.PathLike) -> FaceVideos:
  """Builds `face_videos/<size>px_<encoding>` under data_dir from prepared shards."""
  index = index_lib.load_index(shards_dir)
  builder = FaceVideos(data_dir=os.fspath(data_dir), file_format='array_record',
                       config=builder_config(index['frame_size'][0], index['encoding']))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(shards_dir)))
  return builder


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog='python -m data_prep.tfds_dataset', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--shards', required=True, help='output folder of data_prep.prepare')
  p.add_argument('--data-dir', required=True, help='TFDS data dir')
  args = p.parse_args(argv)
  try:
    paths.check_output_dir(args.data_dir, '--data-dir')
    builder = build(args.shards, args.data_dir)
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  splits = ', '.join(f'{k} {v.num_examples}' for k, v in builder.info.splits.items())
  print(f'built {builder.info.full_name} in {builder.data_dir} ({splits})')
  return 0


if __name__ == '__main__':
  sys.exit(main())
