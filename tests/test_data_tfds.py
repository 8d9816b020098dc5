"""The TFDS builder (ArrayRecord format) opens the same clips, the TFDS way and through grain."""

from __future__ import annotations

import grain
import numpy as np
import pytest

tfds = pytest.importorskip('tensorflow_datasets')
pytest.importorskip('skimage')

from data_prep import prepare  # pylint: disable=g-import-not-at-top
from data_prep import process_clip
from data_prep import astronaut_clips
from data_prep import tfds_dataset
from g3fa_jax.data import pipeline
from g3fa_jax.data import records
from g3fa_jax.data import source as source_lib


def test_tfds_dataset_holds_the_same_clips(tmp_path):
  astronaut_clips.make_dataset(tmp_path / 'raw', 'voxceleb2', identities=3, clips=2, num_frames=8,
                               size=48)
  settings = process_clip.ClipSettings(size=32, crop='full', face_check=False)
  prepare.run(str(tmp_path / 'raw'), str(tmp_path / 'shards'), settings=settings,
              test_identities=['id00002'], progress=False)
  assert tfds_dataset.main(['--shards', str(tmp_path / 'shards'),
                            '--data-dir', str(tmp_path / 'tfds')]) == 0

  ours = source_lib.ClipSource.from_dir(tmp_path / 'shards', 'train')
  by_key = {ours[i]['key']: ours[i] for i in range(len(ours))}
  source = tfds.data_source('face_videos/32px_jpeg', data_dir=str(tmp_path / 'tfds'))
  assert len(source['train']) == 4 and len(source['test']) == 2
  example = source['train'][0]
  mine = by_key[example['key'].decode()]
  assert example['frames'][0].shape == (32, 32, 3) and len(example['frames']) == 8
  np.testing.assert_array_equal(example['frames'][5], records.decode_image(mine['frames'][5]))
  np.testing.assert_allclose(example['box'], mine['box'], rtol=1e-6)

  encoded = source_lib.TfdsClipSource('face_videos/32px_jpeg', 'train', tmp_path / 'tfds')
  assert bytes(mine['frames'][2]) == encoded[0]['frames'][2]  # frames copied, not re-encoded

  ds = pipeline.make_pair_dataset(tmp_path / 'tfds', tfds_name='face_videos/32px_jpeg',
                                  global_batch_size=2, seed=0, id_sampling=True,
                                  shard_options=grain.sharding.NoSharding())
  batch = next(iter(ds))
  assert batch['source'].shape == (2, 32, 32, 3) and batch['source'].dtype == np.float32


@pytest.mark.parametrize('size,encoding', [(256, 'jpeg'), (256, 'png'), (512, 'jpeg')])
def test_named_configs_build_at_the_sizes_users_have(tmp_path, size, encoding):
  """The registered configs (256px_jpeg is the default of data_prep.prepare) build too."""
  astronaut_clips.make_dataset(tmp_path / 'raw', 'voxceleb2', identities=2, clips=1, num_frames=8,
                               size=32)
  settings = process_clip.ClipSettings(size=size, encoding=encoding, crop='full',
                                       face_check=False)
  prepare.run(str(tmp_path / 'raw'), str(tmp_path / 'shards'), settings=settings,
              test_identities=['id00001'], progress=False)
  assert tfds_dataset.main(['--shards', str(tmp_path / 'shards'),
                            '--data-dir', str(tmp_path / 'tfds')]) == 0
  name = f'face_videos/{size}px_{encoding}'
  encoded = source_lib.TfdsClipSource(name, 'train', tmp_path / 'tfds')
  ours = source_lib.ClipSource.from_dir(tmp_path / 'shards', 'train')
  assert len(encoded) == 1 and encoded[0]['frames'][3] == bytes(ours[0]['frames'][3])
  assert records.decode_image(encoded[0]['frames'][0]).shape == (size, size, 3)
