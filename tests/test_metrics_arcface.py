"""ArcFace IResNet converted from a file in insightface's `backbone.pth` layout, against a PyTorch
IResNet written here on the same seeded random weights; CSIM's face alignment and cosine."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax.convert import arcface as arcface_convert
from g3fa_jax.convert import torch_io
from g3fa_jax.metrics import arcface as arcface_lib
from g3fa_jax.metrics import csim

torch = pytest.importorskip('torch')
nn = torch.nn


class Block(nn.Module):
  """insightface `IBasicBlock`."""

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
    self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
    self.prelu = nn.PReLU(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
    self.downsample = downsample

  def forward(self, x):
    out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
    return out + (x if self.downsample is None else self.downsample(x))


class TorchIResNet(nn.Module):
  """insightface `IResNet` (attribute names of `backbone.pth`)."""

  def __init__(self, layers, num_features=512):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
    self.prelu = nn.PReLU(64)
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
      down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, 2, bias=False),
                           nn.BatchNorm2d(planes, eps=1e-5))
      mods = [Block(inplanes, planes, 2, down)] + [Block(planes, planes) for _ in range(blocks - 1)]
      setattr(self, f'layer{stage}', nn.Sequential(*mods))
      inplanes = planes
    self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
    self.dropout = nn.Dropout(p=0)
    self.fc = nn.Linear(512 * 7 * 7, num_features)
    self.features = nn.BatchNorm1d(num_features, eps=1e-5)

  def forward(self, x):
    x = self.prelu(self.bn1(self.conv1(x)))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    x = torch.flatten(self.bn2(x), 1)
    return self.features(self.fc(self.dropout(x)))


def _seeded_iresnet(layers, seed=0) -> TorchIResNet:
  torch.manual_seed(seed)
  model = TorchIResNet(layers).eval()
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, (nn.Conv2d, nn.Linear)):
        m.weight.normal_(0, (1.0 / m.weight[0].numel()) ** 0.5)
      elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.1)
        m.running_mean.normal_(0, 0.1)
        m.running_var.uniform_(0.5, 1.5)
      elif isinstance(m, nn.PReLU):
        m.weight.uniform_(0.0, 0.5)
  return model


def test_arcface_matches_torch(tmp_path):
  layers = (1, 2, 1, 1)
  model = _seeded_iresnet(layers)
  path = tmp_path / 'backbone.pth'
  torch.save({f'module.{k}': v for k, v in model.state_dict().items()}, path)  # DDP prefix too
  variables, info = arcface_convert.read_arcface_checkpoint(path)
  assert info == {'layers': [1, 2, 1, 1], 'num_features': 512, 'arch': 'custom'}
  assert variables['params']['layer2_1']['prelu']['alpha'].shape == (128,)
  assert variables['batch_stats']['layer1_0']['downsample_1']['var'].shape == (64,)

  faces = np.random.default_rng(0).uniform(size=(2, 112, 112, 3)).astype(np.float32)
  ours = np.asarray(arcface_lib.IResNet(layers).apply(variables, arcface_lib.preprocess(faces)))
  with torch.no_grad():
    expected = model(torch.from_numpy((faces - 0.5) / 0.5).permute(0, 3, 1, 2)).numpy()
  scale = np.abs(expected).max()
  np.testing.assert_allclose(ours / scale, expected / scale, atol=1e-4, rtol=0)
  unit = np.asarray(arcface_lib.embed(variables, faces, layers))
  np.testing.assert_allclose(unit, expected / np.linalg.norm(expected, axis=1, keepdims=True),
                             atol=1e-4)

  from g3fa_jax.convert import __main__ as cli  # pylint: disable=g-import-not-at-top
  from g3fa_jax.metrics import weights as weights_lib  # pylint: disable=g-import-not-at-top
  assert cli.main(['arcface', '--checkpoint', str(path), '--out', str(tmp_path / 'arcface')]) == 0
  restored, stored_info = weights_lib.load_metric_weights(
      tmp_path / 'arcface', 'arcface', arcface_lib.template_from_info, 'unused')
  assert stored_info['layers'] == [1, 2, 1, 1]
  np.testing.assert_array_equal(restored['params']['fc']['kernel'],
                                variables['params']['fc']['kernel'])


def test_architecture_read_from_keys():
  keys = {f'layer{s}.{i}.bn1.weight': np.zeros(1)
          for s, n in zip((1, 2, 3, 4), arcface_lib.ARCHS['r100']) for i in range(n)}
  keys['fc.weight'] = np.zeros((512, 25088))
  assert arcface_convert.architecture(keys, source='x') == (arcface_lib.ARCHS['r100'], 512)
  with pytest.raises(torch_io.CheckpointReadError, match='not an insightface IResNet'):
    arcface_convert.architecture({'conv1.weight': np.zeros(1)}, source='x')


def test_similarity_transform_matches_skimage():
  transform = pytest.importorskip('skimage.transform')
  rng = np.random.default_rng(0)
  src = csim.ARCFACE_TEMPLATE * 1.7 + rng.normal(scale=2.0, size=(5, 2)) + 30
  ours = csim.similarity_transform(src, csim.ARCFACE_TEMPLATE)
  if hasattr(transform.SimilarityTransform, 'from_estimate'):  # skimage >= 0.26
    reference = transform.SimilarityTransform.from_estimate(src, csim.ARCFACE_TEMPLATE)
  else:
    reference = transform.SimilarityTransform()
    reference.estimate(src, csim.ARCFACE_TEMPLATE)
  np.testing.assert_allclose(ours, reference.params, atol=1e-9)


def test_warp_matches_torch_grid_sample():
  rng = np.random.default_rng(0)
  image = rng.uniform(size=(64, 80, 3)).astype(np.float32)
  angle = 0.3
  inverse = np.array([[0.6 * np.cos(angle), -0.6 * np.sin(angle), 5.0],
                      [0.6 * np.sin(angle), 0.6 * np.cos(angle), -10.0], [0, 0, 1]], np.float32)
  ours = np.asarray(csim.warp_affine(image, inverse, 112))
  ys, xs = np.meshgrid(np.arange(112), np.arange(112), indexing='ij')
  src = np.einsum('ij,jhw->ihw', inverse[:2], np.stack([xs, ys, np.ones_like(xs)]))
  # align_corners=True: normalised -1/+1 are the outer pixel centres; zeros outside.
  grid = np.stack([src[0] / (80 - 1) * 2 - 1, src[1] / (64 - 1) * 2 - 1], -1)[None]
  expected = torch.nn.functional.grid_sample(
      torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(grid.astype(np.float32)),
      mode='bilinear', padding_mode='zeros', align_corners=True)[0].permute(1, 2, 0).numpy()
  assert (ours == 0).any() and (ours > 0).any()
  np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_alignment_puts_landmarks_on_template():
  marks = csim.ARCFACE_TEMPLATE * 2.0 + 20.0  # a face twice as large, shifted
  image = np.zeros((256, 256, 3), np.float32)
  for x, y in marks:
    image[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2] = 1.0
  maps = csim.alignment_matrices([marks, None], 256)
  faces = np.asarray(csim.align_faces(np.stack([image, image]), maps))
  for x, y in csim.ARCFACE_TEMPLATE:
    assert faces[0, int(round(y)), int(round(x))].mean() > 0.3
  assert faces.shape == (2, 112, 112, 3)


def test_cosine_similarity():
  a = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
  b = np.array([[2.0, 0.0], [-1.0, -1.0]], np.float32)
  np.testing.assert_allclose(csim.cosine_similarity(a, b), [1.0, -1.0], atol=1e-6)
