"""LPIPS (AlexNet, VGG16): converted from files in the torchvision + lpips layouts, against a
PyTorch LPIPS written here with torch.nn on the same seeded random weights."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.convert import lpips as lpips_convert
from g3fa_jax.convert import torch_io
from g3fa_jax.metrics import lpips as lpips_lib
from g3fa_jax.metrics import weights as weights_lib

torch = pytest.importorskip('torch')
nn = torch.nn

# torchvision `features` (index -> (in, out, kernel, stride, padding)) and LPIPS taps.
_ALEX_CONVS = {0: (3, 64, 11, 4, 2), 3: (64, 192, 5, 1, 2), 6: (192, 384, 3, 1, 1),
               8: (384, 256, 3, 1, 1), 10: (256, 256, 3, 1, 1)}
_ALEX_POOLS = {2: 3, 5: 3, 12: 3}
_VGG_CONVS = {i: (a, b, 3, 1, 1) for i, (a, b) in {
    0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256),
    14: (256, 256), 17: (256, 512), 19: (512, 512), 21: (512, 512), 24: (512, 512),
    26: (512, 512), 28: (512, 512)}.items()}
_VGG_POOLS = {4: 2, 9: 2, 16: 2, 23: 2, 30: 2}
_SPECS = {'alex': (_ALEX_CONVS, _ALEX_POOLS, 13, (1, 4, 7, 9, 11), (64, 192, 384, 256, 256)),
          'vgg': (_VGG_CONVS, _VGG_POOLS, 31, (3, 8, 15, 22, 29), (64, 128, 256, 512, 512))}


class TorchLpips(nn.Module):
  """The lpips package's LPIPS v0.1 (ScalingLayer, torchvision features, NetLinLayer heads)."""

  def __init__(self, net: str):
    super().__init__()
    convs, pools, length, self.taps, channels = _SPECS[net]
    layers = []
    for i in range(length):
      if i in convs:
        cin, cout, k, s, p = convs[i]
        layers.append(nn.Conv2d(cin, cout, k, stride=s, padding=p))
      elif i in pools:
        layers.append(nn.MaxPool2d(pools[i], 2))
      else:
        layers.append(nn.ReLU())
    self.features = nn.Sequential(*layers)
    for k, c in enumerate(channels):
      setattr(self, f'lin{k}', nn.Module())
      getattr(self, f'lin{k}').model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))
    self.register_buffer('shift', torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1))
    self.register_buffer('scale', torch.tensor([.458, .448, .450]).view(1, 3, 1, 1))

  def _taps(self, x):
    outs = []
    for i, layer in enumerate(self.features):
      x = layer(x)
      if i in self.taps:
        outs.append(x)
      if i == self.taps[-1]:
        return outs

  def forward(self, in0, in1):  # in [0, 1], NCHW
    f0 = self._taps((2 * in0 - 1 - self.shift) / self.scale)
    f1 = self._taps((2 * in1 - 1 - self.shift) / self.scale)
    total = 0
    for k, (a, b) in enumerate(zip(f0, f1)):
      a = a / (torch.sqrt(torch.sum(a ** 2, dim=1, keepdim=True)) + 1e-10)
      b = b / (torch.sqrt(torch.sum(b ** 2, dim=1, keepdim=True)) + 1e-10)
      total = total + getattr(self, f'lin{k}').model((a - b) ** 2).mean([2, 3], keepdim=True)
    return total


def _seeded_model(net: str, seed: int = 0) -> TorchLpips:
  torch.manual_seed(seed)
  model = TorchLpips(net).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if name.startswith('lin'):
        p.copy_(torch.rand_like(p) * 0.1)  # trained heads are non-negative
      elif name.endswith('weight'):
        p.normal_(0, (2.0 / p[0].numel()) ** 0.5)
      else:
        p.normal_(0, 0.05)
  return model


def _write_files(model: TorchLpips, tmp_path, net: str):
  """Files in the torchvision and lpips layouts (same keys and shapes)."""
  state = model.state_dict()
  backbone = {k: v.clone() for k, v in state.items() if k.startswith('features.')}
  backbone['classifier.6.bias'] = torch.zeros(1000)  # present in the real file, ignored
  heads = {k: v.clone() for k, v in state.items() if k.startswith('lin')}
  assert sorted(heads) == [f'lin{k}.model.1.weight' for k in range(5)]
  paths = (tmp_path / lpips_lib.BACKBONE_FILES[net], tmp_path / f'{net}.pth')
  torch.save(backbone, paths[0])
  torch.save(heads, paths[1])
  return paths


@pytest.mark.parametrize('net,size', [('alex', 64), ('vgg', 32)])
def test_lpips_matches_torch(tmp_path, net, size):
  model = _seeded_model(net)
  backbone_path, heads_path = _write_files(model, tmp_path, net)
  # Heads first: the converter tells the files apart by their keys.
  variables, got_net = lpips_convert.read_lpips_checkpoints([heads_path, backbone_path])
  assert got_net == net
  rng = np.random.default_rng(1)
  a = rng.uniform(size=(2, size, size, 3)).astype(np.float32)
  b = np.clip(a + rng.normal(scale=0.2, size=a.shape), 0, 1).astype(np.float32)
  ours = np.asarray(lpips_lib.Lpips(net).apply(variables, a, b))
  with torch.no_grad():
    expected = model(torch.from_numpy(a).permute(0, 3, 1, 2),
                     torch.from_numpy(b).permute(0, 3, 1, 2)).reshape(-1).numpy()
  assert ours.shape == (2,) and np.all(expected > 0)
  np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)
  assert np.allclose(lpips_lib.Lpips(net).apply(variables, a, a), 0, atol=1e-6)


def test_lpips_cli_writes_loadable_weights(tmp_path):
  from g3fa_jax.convert import __main__ as cli
  backbone_path, heads_path = _write_files(_seeded_model('alex'), tmp_path, 'alex')
  out = tmp_path / 'lpips_alex'
  args = type('Args', (), {'checkpoint': f'{backbone_path},{heads_path}', 'out': str(out)})
  assert 'alex' in lpips_convert.convert(args)
  variables, info = weights_lib.load_metric_weights(
      out, 'lpips', lpips_lib.template_from_info, 'unused')
  assert info['net'] == 'alex'
  assert variables['params']['lin2']['model_1']['kernel'].shape == (1, 1, 384, 1)
  if 'lpips' in cli.COMMANDS:
    assert cli.main(['lpips', '--checkpoint', f'{backbone_path},{heads_path}',
                     '--out', str(tmp_path / 'via_cli')]) == 0


def test_lpips_heads_from_the_wheel(tmp_path):
  import zipfile  # pylint: disable=g-import-not-at-top
  model = _seeded_model('vgg')
  backbone_path, heads_path = _write_files(model, tmp_path, 'vgg')
  wheel = tmp_path / 'lpips-0.1.4-py3-none-any.whl'
  with zipfile.ZipFile(wheel, 'w') as archive:
    archive.write(heads_path, 'lpips/weights/v0.1/vgg.pth')
  from_wheel, net = lpips_convert.read_lpips_checkpoints([backbone_path, wheel])
  from_files, _ = lpips_convert.read_lpips_checkpoints([backbone_path, heads_path])
  assert net == 'vgg'
  np.testing.assert_array_equal(from_wheel['params']['lin3']['model_1']['kernel'],
                                from_files['params']['lin3']['model_1']['kernel'])


def test_lpips_mismatched_files_are_refused(tmp_path):
  alex_backbone, _ = _write_files(_seeded_model('alex'), tmp_path, 'alex')
  _, vgg_heads = _write_files(_seeded_model('vgg'), tmp_path, 'vgg')
  with pytest.raises(torch_io.CheckpointReadError, match='backbone is alex'):
    lpips_convert.read_lpips_checkpoints([alex_backbone, vgg_heads])
  with pytest.raises(torch_io.CheckpointReadError, match='two files'):
    lpips_convert.read_lpips_checkpoints([alex_backbone])


def test_missing_weights_message_has_command(tmp_path):
  command = lpips_lib.make_command('alex', str(tmp_path / 'nope'))
  with pytest.raises(ckpt.MissingCheckpointError, match='python -m g3fa_jax.convert lpips'):
    weights_lib.load_metric_weights(tmp_path / 'nope', 'lpips', lpips_lib.template_from_info,
                                    command)
