"""End to end: run_eval.py on a tiny prepared dataset and a tiny random checkpoint.

The test provides converted LPIPS (AlexNet) and ArcFace weights (random, in the files' layouts);
LPIPS (VGG) and the FID Inception are absent, so the table must say `not computed` for them, with
the command that makes them.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from g3fa_jax import checkpoint as ckpt
from g3fa_jax import model_config
from g3fa_jax.convert import lpips as lpips_convert
from g3fa_jax.evaluation import pairs as pairs_lib
from g3fa_jax.metrics import arcface as arcface_lib
from g3fa_jax.metrics import lpips as lpips_lib
from g3fa_jax.metrics import weights as weights_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory) -> pathlib.Path:
  """3 identities x 1 clip of 8 frames at 64x64, all in the test split."""
  from data_prep import prepare, process_clip, astronaut_clips  # pylint: disable=g-import-not-at-top
  raw = tmp_path_factory.mktemp('raw')
  astronaut_clips.make_dataset(raw, 'voxceleb2', identities=3, clips=1, num_frames=8, size=64)
  out = tmp_path_factory.mktemp('prepared')
  settings = process_clip.ClipSettings(size=64, crop='full', face_check=False)
  prepare.run(str(raw), str(out), settings=settings, test_fraction=1.0, progress=False)
  return out


def _random_variables(template, seed: int):
  """Random values of a variables template: He-scaled kernels, unit BatchNorm statistics and
  scales, zero biases; identity jacobians for the keypoint detector (as its init does).

  (Filling `networks.variables_template` is much faster on a CPU than compiling `init`.)
  """
  rng = np.random.default_rng(seed)
  def fill(path, leaf):
    names = [str(getattr(p, 'key', p)) for p in path]
    if 'jacobian' in names:
      if names[-1] == 'bias':
        return np.tile(np.array([1, 0, 0, 1], np.float32), leaf.shape[0] // 4)
      return np.zeros(leaf.shape, np.float32)
    if names[-1] == 'kernel':
      return (rng.normal(0, 1, leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))).astype(np.float32)
    if names[-1] in ('var', 'scale'):
      return np.ones(leaf.shape, np.float32)
    if names[-1] == 'alpha':
      return np.full(leaf.shape, 0.25, np.float32)
    return np.zeros(leaf.shape, np.float32)
  return jax.tree_util.tree_map_with_path(fill, template)


@pytest.fixture(scope='module')
def checkpoint_dir(tmp_path_factory) -> pathlib.Path:
  from g3fa_jax.models import networks  # pylint: disable=g-import-not-at-top
  config = model_config.load_config(str(ROOT / 'configs' / 'tiny.py'))
  items = {name: _random_variables(networks.variables_template(name, config), i)
           for i, name in enumerate(('kp_detector', 'generator'))}
  out = tmp_path_factory.mktemp('ckpt') / 'tiny'
  ckpt.save_checkpoint(out, 3, items, config.to_dict(), source='random tiny model')
  return out


def _random_lpips_alex(rng) -> dict[str, np.ndarray]:
  state = {}
  for index, (cout, k, _, _) in lpips_lib.ALEXNET['convs'].items():
    cin = {0: 3, 3: 64, 6: 192, 8: 384, 10: 256}[index]
    state[f'features.{index}.weight'] = rng.normal(0, (2 / (cin * k * k)) ** 0.5,
                                                   (cout, cin, k, k)).astype(np.float32)
    state[f'features.{index}.bias'] = np.zeros(cout, np.float32)
  for k, c in enumerate(lpips_lib.ALEXNET['channels']):
    state[f'lin{k}.model.1.weight'] = rng.uniform(0, 0.1, (1, c, 1, 1)).astype(np.float32)
  return state


def _random_arcface(layers) -> dict:
  return _random_variables(arcface_lib.arcface_template(layers), 7)


@pytest.fixture(scope='module')
def weights_dir(tmp_path_factory) -> pathlib.Path:
  root = tmp_path_factory.mktemp('weights')
  heads = {k: v for k, v in _random_lpips_alex(np.random.default_rng(0)).items()
           if k.startswith('lin')}
  backbone = {k: v for k, v in _random_lpips_alex(np.random.default_rng(0)).items()
              if k.startswith('features')}
  variables, net = lpips_convert.lpips_to_variables(backbone, heads, source='random')
  weights_lib.save_metric_weights(root / 'lpips_alex', 'lpips', variables, {'net': net},
                                  source='random')
  layers = (1, 1, 1, 1)
  weights_lib.save_metric_weights(root / 'arcface', 'arcface', _random_arcface(layers),
                                  {'layers': list(layers), 'num_features': 512, 'arch': 'custom'},
                                  source='random')
  return root


def test_run_eval_end_to_end(data_dir, checkpoint_dir, weights_dir, tmp_path):
  workdir = tmp_path / 'eval'
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  command = [sys.executable, str(ROOT / 'run_eval.py'), f'--config={ROOT / "configs" / "tiny.py"}',
             f'--checkpoint={checkpoint_dir}', f'--config.data.data_dir={data_dir}',
             f'--config.eval.weights_dir={weights_dir}', f'--workdir={workdir}',
             '--config.eval.num_pairs=2', '--config.eval.batch_size=4',
             '--config.eval.max_frames=4', '--noprogress']
  run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  assert 'Same-identity reconstruction' in run.stdout

  results = json.loads((workdir / 'results.json').read_text())
  same, cross = results['same_identity'], results['cross_identity']
  assert results['step'] == 3 and same['num_videos'] == 3 and same['num_frames'] == 12
  assert cross['num_pairs'] == 2 and cross['num_frames'] == 8
  for name in ('L1', 'LPIPS', 'PSNR', 'SSIM'):
    entry = same['metrics'][name]
    assert entry['status'] == 'ok' and np.isfinite(entry['value']), (name, entry)
  assert 0 <= same['metrics']['L1']['value'] <= 255
  assert same['metrics']['AKD']['status'] in ('ok', 'n/a')  # shipped MTCNN; faces may be absent
  assert cross['metrics']['CSIM']['status'] == 'ok'
  assert -1 <= cross['metrics']['CSIM']['value'] <= 1
  for table in (same, cross):
    fid = table['metrics']['FID']
    assert fid['status'] == 'not computed'
    assert fid['command'].startswith('python -m g3fa_jax.convert inception')
  assert same['extras']['LPIPS (vgg)']['status'] == 'not computed'
  assert 'lpips --checkpoint vgg16-397923af.pth,vgg.pth' in same['extras']['LPIPS (vgg)']['command']

  markdown = (workdir / 'results.md').read_text()
  assert '| L1 ↓ | LPIPS ↓ | PSNR ↑ | SSIM ↑ | FID ↓ | AKD ↓ |' in markdown
  assert '| FID ↓ | CSIM ↑ |' in markdown and 'not computed' in markdown
  assert 'python -m g3fa_jax.convert inception' in markdown
  assert len(pairs_lib.read_pairs(workdir / 'pairs.csv')) == 2
  assert sorted(p.name for p in (workdir / 'samples').iterdir())[:1] == ['cross_identity_0.png']
  assert any((workdir / 'tensorboard').iterdir())


def test_pairs_are_deterministic_cross_identity_and_round_trip(tmp_path):
  identities = ['a', 'a', 'b', 'c', 'c']
  pairs = pairs_lib.draw_pairs(identities, 20, seed=3)
  assert pairs == pairs_lib.draw_pairs(identities, 20, seed=3)
  assert pairs != pairs_lib.draw_pairs(identities, 20, seed=4)
  assert all(identities[s] != identities[d] for s, d in pairs)
  keyed = [(f'k{s}', f'k{d}') for s, d in pairs]
  pairs_lib.write_pairs(tmp_path / 'pairs.csv', keyed)
  assert pairs_lib.read_pairs(tmp_path / 'pairs.csv') == keyed
  (tmp_path / 'plain.csv').write_text('x1, y1\n# comment\n\nx2,y2,extra\n')
  assert pairs_lib.read_pairs(tmp_path / 'plain.csv') == [('x1', 'y1'), ('x2', 'y2')]
  with pytest.raises(ValueError, match='at least two identities'):
    pairs_lib.draw_pairs(['a', 'a'], 3, seed=0)


def test_video_means_average_frames_then_videos():
  from g3fa_jax.evaluation import accumulators  # pylint: disable=g-import-not-at-top
  acc = accumulators.VideoMeans()
  acc.add_frames('m', [1.0, 3.0])
  acc.add_frames('m', [np.nan, 5.0])  # NaN frames are left out of the video's mean
  acc.end_video()
  acc.add_frames('m', [10.0])
  acc.end_video()
  acc.add_frames('m', [np.nan])  # a video without values is skipped
  acc.end_video()
  assert acc.mean('m') == pytest.approx((3.0 + 10.0) / 2)
  assert acc.num_videos('m') == 2 and acc.skipped_videos['m'] == 1
  assert acc.missing_frames['m'] == 2 and acc.mean('other') is None


def test_console_markdown_and_json_carry_the_same_notes():
  """A metric outside the main table (LPIPS with VGG16) that is not computed, and an n/a column,
  are explained in all three forms of the results."""
  from g3fa_jax.evaluation import protocols  # pylint: disable=g-import-not-at-top
  from g3fa_jax.evaluation import table  # pylint: disable=g-import-not-at-top
  vgg_command = ('python -m g3fa_jax.convert lpips --checkpoint vgg16-397923af.pth,vgg.pth '
                 '--out checkpoints/lpips_vgg')
  metrics = {name: protocols.Entry(0.5) for name in table.COLUMNS['same_identity']}
  metrics['AKD'] = protocols.Entry.of(None, 'no face found in any generated frame')
  result = protocols.ProtocolResult(
      'same_identity', metrics,
      {'LPIPS (vgg)': protocols.Entry(None, 'not computed', 'checkpoints/lpips_vgg is missing',
                                      vgg_command),
       'AKD missing share': protocols.Entry(1.0)},
      num_videos=2, num_frames=8, seconds=2.0)
  results = {'same_identity': result}
  text = table.to_text(results)
  markdown = table.to_markdown(results, {})
  saved = json.dumps(table.to_json(results, {}))
  for form in (text, markdown, saved):
    assert 'checkpoints/lpips_vgg is missing' in form, form
    assert vgg_command in form and 'no face found in any generated frame' in form, form
  assert 'LPIPS (vgg): not computed' in text and 'AKD missing share: 1' in text
