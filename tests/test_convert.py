"""Converters: official/Unsup3D .pth -> orbax checkpoints -> Animator / InverseRenderer."""

from __future__ import annotations

import json
import pathlib

import jax
import ml_collections
import numpy as np
import pytest
import yaml

from conftest import fixture_state_dict, nchw_to_nhwc
from g3fa_jax import Animator, InverseRenderer
from g3fa_jax import model_config
from g3fa_jax.convert import __main__ as convert_cli
from g3fa_jax.convert import official
from g3fa_jax.convert import state_dict as sd
from g3fa_jax.convert import unsup3d as unsup3d_convert
from g3fa_jax.models import networks
from g3fa_jax.models import unsup3d as unsup3d_lib

torch = pytest.importorskip('torch')


def _random_like(template, rng: np.random.Generator):
  """Random variables with the template's shapes: small weights, positive variances, unit u/v."""
  def fill(path, leaf):
    name = path[-1].key
    collection = path[0].key
    shape = leaf.shape
    if collection == 'batch_stats':
      return (rng.uniform(0.5, 1.5, shape) if name == 'var' else
              rng.normal(0, 0.1, shape)).astype(np.float32)
    if collection == 'spectral':
      v = rng.normal(size=shape)
      return (v / np.linalg.norm(v)).astype(np.float32)
    if name == 'scale':
      return rng.uniform(0.8, 1.2, shape).astype(np.float32)
    return rng.normal(0, 0.02, shape).astype(np.float32)
  return jax.tree_util.tree_map_with_path(fill, template)


def _to_torch(state_dict):
  return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict.items()}


def _fixture_yaml(tmp_path: pathlib.Path, fixture_settings) -> str:
  path = tmp_path / 'small.yaml'
  path.write_text(yaml.safe_dump({'model_params': fixture_settings['model_params']}))
  return str(path)


def test_module_path_mapping():
  assert sd.flax_module_path('predictor.encoder.down_blocks.0.conv') == (
      'predictor/encoder/down_blocks_0/conv')
  assert sd.flax_module_path('discs.1.down_blocks.3.norm') == 'discs_1/down_blocks_3/norm'
  assert sd.torch_module_path(('decoder', 'SPADE_0', 'SPADE_1', 'mlp_shared_0'),
                              official.OFFICIAL_LITERAL_NAMES) == 'decoder.SPADE_0.SPADE_1.mlp_shared.0'


@pytest.mark.parametrize('name', networks.G3FA_NETWORKS)
def test_official_state_dict_round_trip(official_fixture, fixture_settings, name):
  """Fixture (official) keys -> Flax variables -> official keys, exactly, values bit-equal."""
  config = model_config.default_config()
  config.model = model_config.model_config_from_official(fixture_settings['model_params'])
  state_dict = fixture_state_dict(official_fixture, name)
  variables = official.official_to_variables({name: state_dict}, config, source='fixture',
                                             names=(name,))[name]
  back = official.variables_to_official(variables)
  expected = {k: v for k, v in state_dict.items() if k not in official.ANTIALIAS_BUFFERS}
  assert sorted(back) == sorted(expected)
  for key, value in expected.items():
    if not key.endswith('num_batches_tracked'):
      np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_converted_fixture_reproduces_official_outputs(tmp_path, official_fixture,
                                                       fixture_settings):
  """.pth -> CLI -> orbax -> Animator.reconstruct equals the official eval outputs."""
  pth = tmp_path / 'small.pth'
  torch.save({name: _to_torch(fixture_state_dict(official_fixture, name))
              for name in networks.G3FA_NETWORKS} | {'epoch': 3}, pth)
  out = tmp_path / 'ckpt'
  assert convert_cli.main(['official', '--checkpoint', str(pth), '--out', str(out),
                           '--config', _fixture_yaml(tmp_path, fixture_settings)]) == 0
  animator = Animator.from_checkpoint(out)
  result = animator.reconstruct(nchw_to_nhwc(official_fixture['in/source']),
                                nchw_to_nhwc(official_fixture['in/driving']))
  # The fixture's anti-alias buffers are bfloat16-rounded; the converter recomputes the exact
  # kernel, which moves keypoints by up to 2e-4 (1e-4 parity with the fixture's own kernel is
  # checked in test_parity_generator.py).
  np.testing.assert_allclose(result['kp_driving']['value'],
                             official_fixture['out/eval/kp_driving/value'], atol=5e-4)
  for key in ('prediction', 'deformed', 'occlusion_map', 'mask'):
    np.testing.assert_allclose(result[key],
                               nchw_to_nhwc(official_fixture[f'out/eval/generator/{key}']),
                               atol=5e-3, err_msg=key)


@pytest.mark.slow
def test_full_size_official_checkpoint_converts_and_runs(tmp_path):
  """A vox-256 checkpoint in the official format (random weights, `module.` prefixes, optimiser
  entries) converts with the CLI and animates 256x256 frames through Animator."""
  config = model_config.default_config()
  rng = np.random.default_rng(0)
  checkpoint = {}
  for name in networks.G3FA_NETWORKS:
    variables = _random_like(networks.variables_template(name, config), rng)
    state_dict = official.variables_to_official(variables)
    if name == 'generator':
      state_dict = {f'module.{k}': v for k, v in state_dict.items()}
    checkpoint[name] = _to_torch(state_dict)
  checkpoint['optimizer_generator'] = {'state': {}, 'param_groups': []}
  checkpoint['epoch'] = 12
  pth = tmp_path / 'G3FA.pth'
  torch.save(checkpoint, pth)
  out = tmp_path / 'converted'
  assert convert_cli.main(['official', '--checkpoint', str(pth), '--out', str(out)]) == 0
  assert (out / '12').is_dir()

  animator = Animator.from_checkpoint(out)
  frames = np.random.default_rng(1).uniform(size=(2, 256, 256, 3)).astype(np.float32)
  result = animator.reconstruct(frames[:1], frames[1:])
  assert result['prediction'].shape == (1, 256, 256, 3)
  assert result['kp_source']['value'].shape == (1, 15, 2)
  assert result['kp_source']['jacobian'].shape == (1, 15, 2, 2)
  assert np.isfinite(result['prediction']).all()
  # The converted weights are the ones in the file.
  restored = animator.generator_variables['params']['first']['conv']['kernel']
  np.testing.assert_array_equal(
      np.asarray(restored),
      checkpoint['generator']['module.first.conv.weight'].numpy().transpose(2, 3, 1, 0))


@pytest.mark.slow
def test_full_size_unsup3d_checkpoint_converts_and_runs(tmp_path):
  config = model_config.default_config()
  variables = _random_like(networks.variables_template('unsup3d', config),
                           np.random.default_rng(0))
  net_d = sd.variables_to_state_dict(
      variables, transposed_convs=unsup3d_lib.UNSUP3D_TRANSPOSED_CONVS)
  pth = tmp_path / 'checkpoint030.pth'
  torch.save({'netD': _to_torch(net_d), 'netA': {}, 'epoch': 30}, pth)
  out = tmp_path / 'unsup3d'
  assert convert_cli.main(['unsup3d', '--checkpoint', str(pth), '--out', str(out)]) == 0
  renderer = InverseRenderer.from_checkpoint(out)
  images = np.random.default_rng(2).uniform(size=(1, 256, 256, 3)).astype(np.float32)
  depth, normal = renderer.depth_and_normal(images)
  assert depth.shape == (1, 256, 256, 1) and normal.shape == (1, 256, 256, 3)
  assert np.all((depth > 0.89) & (depth < 1.11))
  # Unit normals at 64x64, bilinearly resized: never longer than 1, shorter where they turn.
  norms = np.linalg.norm(normal, axis=-1)
  assert np.all(norms <= 1 + 1e-5) and np.median(norms) > 0.5
  # Asking it for a generator is a clear error, not a crash deep inside orbax.
  with pytest.raises(sd.CheckpointMismatchError, match='has no kp_detector'):
    Animator.from_checkpoint(out)


class _Exploit:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    import os  # pylint: disable=g-import-not-at-top
    return (os.system, (f'touch {self.marker}',))


def test_malicious_pickle_is_refused(tmp_path, capsys):
  marker = tmp_path / 'pwned'
  pth = tmp_path / 'evil.pth'
  torch.save({'generator': _Exploit(marker)}, pth)
  assert convert_cli.main(['official', '--checkpoint', str(pth), '--out',
                           str(tmp_path / 'out')]) == 2
  err = capsys.readouterr().err
  assert str(pth) in err and 'refused' in err
  assert not marker.exists()
  assert not (tmp_path / 'out').exists()


def test_wrong_architecture_is_refused(tmp_path, capsys, official_fixture):
  """The fixture's reduced model read as vox-256: shape mismatches, named, nothing written."""
  pth = tmp_path / 'small.pth'
  torch.save({name: _to_torch(fixture_state_dict(official_fixture, name))
              for name in networks.G3FA_NETWORKS}, pth)
  assert convert_cli.main(['official', '--checkpoint', str(pth), '--out',
                           str(tmp_path / 'out')]) == 2
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and str(pth) in err and 'shape mismatch' in err
  assert not (tmp_path / 'out').exists()


def test_antialias_buffer_of_another_scale_is_refused(official_fixture, fixture_settings):
  config = model_config.default_config()
  config.model = model_config.model_config_from_official(fixture_settings['model_params'])
  config.model.kp_detector_params.scale_factor = 0.5
  with pytest.raises(sd.CheckpointMismatchError, match='scale_factor 0.5'):
    official.official_to_variables(
        {'kp_detector': fixture_state_dict(official_fixture, 'kp_detector')}, config,
        source='x.pth', names=('kp_detector',))


def test_missing_and_unexpected_keys_are_named(official_fixture, fixture_settings):
  config = model_config.default_config()
  config.model = model_config.model_config_from_official(fixture_settings['model_params'])
  state_dict = fixture_state_dict(official_fixture, 'kp_detector')
  del state_dict['kp.bias']
  state_dict['extra.weight'] = np.zeros(3, np.float32)
  with pytest.raises(sd.CheckpointMismatchError, match=r'missing: params/kp/bias.*unexpected: extra\.weight'):
    official.official_to_variables({'kp_detector': state_dict}, config, source='x.pth',
                                   names=('kp_detector',))


def test_not_a_checkpoint_and_missing_file(tmp_path, capsys):
  junk = tmp_path / 'junk.pth'
  junk.write_bytes(b'not a zip or pickle')
  assert convert_cli.main(['official', '--checkpoint', str(junk), '--out', str(tmp_path / 'o')]) == 2
  assert str(junk) in capsys.readouterr().err
  assert convert_cli.main(['unsup3d', '--checkpoint', str(tmp_path / 'nope.pth'), '--out',
                           str(tmp_path / 'o')]) == 2
  assert 'no such file' in capsys.readouterr().err
  torch.save({'netA': {}}, tmp_path / 'other.pth')
  assert convert_cli.main(['unsup3d', '--checkpoint', str(tmp_path / 'other.pth'), '--out',
                           str(tmp_path / 'o')]) == 2
  assert "no 'netD' entry" in capsys.readouterr().err
