"""FID Inception: converted from a file in pytorch-fid's layout, against a PyTorch Inception-v3
(torchvision's layout with pytorch-fid's FID blocks) written here on the same seeded random weights,
including pytorch-fid's resize to 299 and [-1, 1] scaling."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax.convert import inception as inception_convert
from g3fa_jax.convert import torch_io
from g3fa_jax.metrics import inception as inception_lib

torch = pytest.importorskip('torch')
nn = torch.nn
F = torch.nn.functional


class BasicConv2d(nn.Module):

  def __init__(self, cin, cout, **kwargs):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
    self.bn = nn.BatchNorm2d(cout, eps=0.001)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


def _avg(x):
  return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):

  def __init__(self, cin, pool_features):
    super().__init__()
    self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
    self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
    self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
    self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
    self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

  def forward(self, x):
    return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                      self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                      self.branch_pool(_avg(x))], 1)


class BlockB(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
    self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

  def forward(self, x):
    return torch.cat([self.branch3x3(x),
                      self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                      F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):

  def __init__(self, cin, c7):
    super().__init__()
    self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
    self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
    self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
    self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

  def forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for i in range(1, 6):
      bd = getattr(self, f'branch7x7dbl_{i}')(bd)
    return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg(x))], 1)


class BlockD(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
    self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
    self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
    self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

  def forward(self, x):
    b7 = x
    for i in range(1, 5):
      b7 = getattr(self, f'branch7x7x3_{i}')(b7)
    return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):

  def __init__(self, cin, max_pool):
    super().__init__()
    self.max_pool = max_pool
    self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
    self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
    self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
    self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

  def forward(self, x):
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
    pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg(x)
    return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FidInception(nn.Module):
  """torchvision Inception3(num_classes=1008, aux_logits=False) names, pytorch-fid blocks."""

  def __init__(self):
    super().__init__()
    self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
    self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
    self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
    self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
    self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
    self.Mixed_5b = BlockA(192, 32)
    self.Mixed_5c = BlockA(256, 64)
    self.Mixed_5d = BlockA(288, 64)
    self.Mixed_6a = BlockB(288)
    self.Mixed_6b = BlockC(768, 128)
    self.Mixed_6c = BlockC(768, 160)
    self.Mixed_6d = BlockC(768, 160)
    self.Mixed_6e = BlockC(768, 192)
    self.Mixed_7a = BlockD(768)
    self.Mixed_7b = BlockE(1280, max_pool=False)
    self.Mixed_7c = BlockE(2048, max_pool=True)
    self.fc = nn.Linear(2048, 1008)

  def forward(self, images):  # pytorch-fid InceptionV3.forward with output_blocks=[3]
    x = F.interpolate(images, size=(299, 299), mode='bilinear', align_corners=False)
    x = 2 * x - 1
    x = F.max_pool2d(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))), 3, stride=2)
    x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
    for name in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'):
      x = getattr(self, f'Mixed_{name}')(x)
    return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)


def _seeded_inception(seed: int = 0) -> FidInception:
  torch.manual_seed(seed)
  model = FidInception().eval()
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, nn.Conv2d):
        module.weight.normal_(0, (2.0 / module.weight[0].numel()) ** 0.5)
      elif isinstance(module, nn.BatchNorm2d):
        module.weight.uniform_(0.5, 1.5)
        module.bias.normal_(0, 0.1)
        module.running_mean.normal_(0, 0.1)
        module.running_var.uniform_(0.5, 1.5)
  return model


def test_inception_matches_pytorch_fid_layout(tmp_path):
  model = _seeded_inception()
  state = model.state_dict()
  assert 'Mixed_7c.branch3x3dbl_3b.bn.running_var' in state and 'fc.weight' in state
  path = tmp_path / inception_lib.WEIGHTS_FILE
  torch.save(state, path)
  variables = inception_convert.read_inception_checkpoint(path)
  assert variables['batch_stats']['Mixed_6b']['branch7x7_2']['bn']['mean'].shape == (128,)
  assert variables['params']['Mixed_6b']['branch7x7_2']['conv']['kernel'].shape == (1, 7, 128, 128)

  images = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)
  ours = np.asarray(inception_lib.fid_features(variables, images))
  with torch.no_grad():
    expected = model(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
  assert ours.shape == (2, inception_lib.FEATURE_DIM)
  scale = np.abs(expected).max()
  assert scale > 0
  np.testing.assert_allclose(ours / scale, expected / scale, atol=1e-4, rtol=0)

  from g3fa_jax.convert import __main__ as cli  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import weights as weights_lib  # pylint: disable=g-import-not-at-top
  assert cli.main(['inception', '--checkpoint', str(path), '--out', str(tmp_path / 'inc')]) == 0
  restored, _ = weights_lib.load_metric_weights(
      tmp_path / 'inc', 'inception', inception_lib.template_from_info, 'unused')
  np.testing.assert_array_equal(restored['batch_stats']['Mixed_7c']['branch_pool']['bn']['var'],
                                variables['batch_stats']['Mixed_7c']['branch_pool']['bn']['var'])


def test_inception_refuses_other_files(tmp_path):
  path = tmp_path / 'other.pth'
  torch.save({'features.0.weight': torch.zeros(64, 3, 3, 3)}, path)
  with pytest.raises(torch_io.CheckpointReadError, match='not an Inception-v3'):
    inception_convert.read_inception_checkpoint(path)
