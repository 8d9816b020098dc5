"""VGG19 perceptual features: torchvision state dict -> Flax, against a torch.nn.functional
forward."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax.convert import state_dict as sd
from g3fa_jax.convert import torch_io
from g3fa_jax.convert import vgg19 as vgg19_convert
from g3fa_jax.models import vgg19 as vgg19_lib

torch = pytest.importorskip('torch')
F = torch.nn.functional

# torchvision `vgg19().features`: conv index -> (out, in); every conv is 3x3 with padding 1.
_TORCHVISION_CONVS = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
    14: (256, 256), 16: (256, 256), 19: (512, 256), 21: (512, 512), 23: (512, 512),
    25: (512, 512), 28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512)}
_TORCHVISION_POOLS = (4, 9, 18, 27, 36)
_RELU_OUTPUTS = (1, 6, 11, 20, 29)  # relu1_1 .. relu5_1


def _random_vgg19_state_dict(seed: int = 0) -> dict:
  """A torchvision-layout vgg19 state dict with He-scaled random weights (activations stay O(1))."""
  gen = torch.Generator().manual_seed(seed)
  state = {}
  for index, (out, inp) in _TORCHVISION_CONVS.items():
    std = (2.0 / (9 * inp)) ** 0.5
    state[f'features.{index}.weight'] = torch.randn(out, inp, 3, 3, generator=gen) * std
    state[f'features.{index}.bias'] = torch.randn(out, generator=gen) * 0.05
  for index, (out, inp) in {0: (4096, 512 * 7 * 7), 3: (4096, 4096), 6: (1000, 4096)}.items():
    state[f'classifier.{index}.weight'] = torch.zeros(out, inp)
    state[f'classifier.{index}.bias'] = torch.zeros(out)
  return state


def _torch_features(state: dict, images: np.ndarray) -> list[np.ndarray]:
  """relu1_1 .. relu5_1 with torch.nn.functional, NCHW in, NHWC numpy out."""
  mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
  std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
  x = (torch.from_numpy(images).permute(0, 3, 1, 2) - mean) / std
  outs = []
  with torch.no_grad():
    for index in range(_RELU_OUTPUTS[-1] + 1):
      if index in _TORCHVISION_CONVS:
        x = F.conv2d(x, state[f'features.{index}.weight'], state[f'features.{index}.bias'],
                     padding=1)
      elif index in _TORCHVISION_POOLS:
        x = F.max_pool2d(x, 2, 2)
      else:
        x = F.relu(x)
      if index in _RELU_OUTPUTS:
        outs.append(x.permute(0, 2, 3, 1).numpy())
  return outs


def test_vgg19_checkpoint_matches_torch(tmp_path):
  state = _random_vgg19_state_dict()
  pth = tmp_path / 'vgg19-dcbb9e9d.pth'
  torch.save(state, pth)
  variables = vgg19_convert.read_vgg19_checkpoint(pth)
  assert sorted(variables['params']) == sorted(f'features_{i}' for i, _ in vgg19_lib.VGG19_CONVS)
  np.testing.assert_array_equal(variables['params']['features_5']['kernel'],
                                state['features.5.weight'].numpy().transpose(2, 3, 1, 0))

  images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
  ours = vgg19_lib.Vgg19().apply(variables, images)
  expected = _torch_features(state, images)
  assert [o.shape for o in ours] == [(2, 32, 32, 64), (2, 16, 16, 128), (2, 8, 8, 256),
                                     (2, 4, 4, 512), (2, 2, 2, 512)]
  for i, (a, b) in enumerate(zip(ours, expected)):
    scale = np.abs(b).max()
    assert scale > 0, i
    np.testing.assert_allclose(np.asarray(a) / scale, b / scale, atol=1e-4, rtol=0,
                               err_msg=f'relu{i + 1}_1')


def test_vgg19_accepts_module_prefix():
  state = {f'module.{k}': v.numpy() for k, v in _random_vgg19_state_dict().items()}
  variables = vgg19_convert.vgg19_to_variables(state, source='prefixed')
  np.testing.assert_array_equal(variables['params']['features_0']['bias'],
                                state['module.features.0.bias'])


def test_non_vgg_file_is_a_clear_error(tmp_path):
  other = tmp_path / 'generator.pth'
  torch.save({'generator': {'first.conv.weight': torch.zeros(1)}, 'epoch': 1}, other)
  with pytest.raises(torch_io.CheckpointReadError, match='not a torchvision VGG19 state dict'):
    vgg19_convert.read_vgg19_checkpoint(other)
  with pytest.raises(torch_io.CheckpointReadError, match='no such file'):
    vgg19_convert.read_vgg19_checkpoint(tmp_path / 'missing.pth')


def test_vgg_of_another_width_is_refused():
  state = {k: v.numpy() for k, v in _random_vgg19_state_dict().items()}
  state['features.0.weight'] = np.zeros((32, 3, 3, 3), np.float32)
  with pytest.raises(sd.CheckpointMismatchError, match='features.0.weight'):
    vgg19_convert.vgg19_to_variables(state, source='narrow.pth')


def test_vgg19_cli_writes_a_checkpoint_the_training_loads(tmp_path):
  from g3fa_jax import checkpoint as ckpt  # pylint: disable=g-import-not-at-top
  from g3fa_jax.convert import __main__ as convert_cli  # pylint: disable=g-import-not-at-top
  state = _random_vgg19_state_dict(seed=3)
  torch.save(state, tmp_path / 'vgg19.pth')
  assert convert_cli.main(['vgg19', '--checkpoint', str(tmp_path / 'vgg19.pth'),
                           '--out', str(tmp_path / 'vgg19')]) == 0
  items, _ = ckpt.restore_items(tmp_path / 'vgg19', ('vgg19',))
  np.testing.assert_array_equal(items['vgg19']['params']['features_0']['kernel'],
                                state['features.0.weight'].numpy().transpose(2, 3, 1, 0))
