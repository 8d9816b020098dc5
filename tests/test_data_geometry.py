"""Optional precomputed Unsup3D depth/normal maps stored beside the frames."""

from __future__ import annotations

import grain
import jax
import ml_collections
import numpy as np
import pytest

pytest.importorskip('skimage')

from data_prep import add_geometry  # pylint: disable=g-import-not-at-top
from data_prep import prepare
from data_prep import process_clip
from data_prep import astronaut_clips
from g3fa_jax import model_config
from g3fa_jax.data import index as index_lib
from g3fa_jax.data import pairs
from g3fa_jax.data import pipeline
from g3fa_jax.data import records
from g3fa_jax.data import source as source_lib
from g3fa_jax.inference.inverse_renderer import InverseRenderer
from g3fa_jax.models import networks


def test_map16_round_trip():
  rng = np.random.default_rng(0)
  depth = rng.uniform(0.9, 1.1, (8, 8))
  np.testing.assert_allclose(
      records.decode_map16(records.encode_map16(depth, records.DEPTH_MIN, records.DEPTH_RANGE),
                           records.DEPTH_MIN, records.DEPTH_RANGE), depth, atol=4e-6)
  normal = rng.uniform(-1, 1, (8, 8, 3))
  np.testing.assert_allclose(
      records.decode_map16(records.encode_map16(normal, -1, 2), -1, 2, channels=3), normal,
      atol=2e-5)


def test_geometry_added_and_served(tmp_path):
  astronaut_clips.make_dataset(tmp_path / 'raw', 'voxceleb2', identities=2, clips=1, num_frames=4,
                               size=48)
  settings = process_clip.ClipSettings(size=32, crop='full', face_check=False, min_frames=2)
  prepare.run(str(tmp_path / 'raw'), str(tmp_path / 'shards'), settings=settings,
              test_fraction=0, progress=False)
  with pytest.raises(ValueError, match='add_geometry'):
    pipeline.make_pair_dataset(tmp_path / 'shards', global_batch_size=2, with_geometry=True,
                               shard_options=grain.sharding.NoSharding())

  config = ml_collections.ConfigDict({'model': model_config.vox256_model_config(),
                                      'unsup3d': model_config.unsup3d_config()})
  config.unsup3d.nf, config.unsup3d.zdim = 16, 8  # tiny random network: tests the plumbing
  rng = np.random.default_rng(0)  # random weights without compiling an init function
  variables = jax.tree.map(lambda s: rng.normal(0, 0.2, s.shape).astype(s.dtype),
                           networks.variables_template('unsup3d', config))
  renderer = InverseRenderer(config, variables)
  done = add_geometry.add_geometry(tmp_path / 'shards', renderer, batch_size=4, progress=False)
  assert done == {'shards': 1, 'records': 2}
  assert add_geometry.add_geometry(tmp_path / 'shards', renderer, progress=False)['shards'] == 0
  assert index_lib.load_split(tmp_path / 'shards', 'train').geometry

  clips = source_lib.ClipSource.from_dir(tmp_path / 'shards')
  record = clips[0]
  frames = clips.read_frames(0).astype(np.float32) / 255.0
  depth, normal = renderer.depth_and_normal(frames)  # at the frame size, 32x32
  stored_depth = np.stack([records.decode_map16(d, records.DEPTH_MIN, records.DEPTH_RANGE)
                           for d in record['depth']])[..., None]
  stored_normal = np.stack([records.decode_map16(n, -1, 2, channels=3) for n in record['normal']])
  assert stored_depth.shape == (4, 64, 64, 1) and stored_normal.shape == (4, 64, 64, 3)
  # the official pipeline resizes the 64x64 maps to the frame size: same maps up to quantisation
  from g3fa_jax.ops import resize  # pylint: disable=g-import-not-at-top
  for stored, expected, atol in ((stored_depth, depth, 1e-5), (stored_normal, normal, 5e-5)):
    resized = resize.resize_bilinear(stored, (32, 32), align_corners=False)
    np.testing.assert_allclose(np.asarray(resized), expected, atol=atol)

  ds = pipeline.make_pair_dataset(
      tmp_path / 'shards', global_batch_size=2, seed=0, with_geometry=True,
      augmentation=pairs.Augmentation(horizontal_flip=True, time_flip=True),
      shard_options=grain.sharding.NoSharding())
  batch = next(iter(ds))
  assert batch['source_depth'].shape == (2, 64, 64, 1)
  assert batch['driving_normal'].shape == (2, 64, 64, 3)
  assert batch['source_depth'].dtype == np.float32
  assert 0.85 < batch['source_depth'].min() and batch['source_depth'].max() < 1.15
