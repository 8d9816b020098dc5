"""Times the official PyTorch G3FA (a clone of github.com/dfki-av/G3FA named by --official) for
side-by-side ratios: the training step, an animated frame, a per-network profile, or the step's
time per PyTorch operator (torch.profiler, one step after --warmup).

  python benchmarks/official_torch.py --official /tmp/g3fa_official --mode train --batch 2
  python benchmarks/official_torch.py --official /tmp/g3fa_official --mode animate --batch 1
  python benchmarks/official_torch.py --official /tmp/g3fa_official --mode profile --batch 2
  python benchmarks/official_torch.py --official /tmp/g3fa_official --mode ops --batch 2

Prints one JSON line (last line of stdout). Nothing of the official code is kept in this project:
the clone is put on sys.path at run time; a randomly initialised torchvision VGG19 stands in for
the ImageNet one (no download) and Unsup3D gets random weights (speed does not depend on them).
The step is the official one (`GeneratorFullModel`, backward, Adam for generator and keypoint
detector, then `DiscriminatorFullModel`, backward, Adam for the three discriminators); a frame is
keypoints of the driving frame + the generator (no_grad, eval mode), as the official `animate.py`.
`benchmarks/bench_train.py --official` and `benchmarks/bench_animate.py --official` run this in a
subprocess. Figures are medians after warm-up; on CUDA each timing is bracketed by a synchronize.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from typing import Any, Callable

NUM_KP = 15


def missing_reason(official: str) -> str | None:
  """Why the official side cannot run here (None when it can): no torch, or no clone at the path."""
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import  # noqa: F401
  except ImportError:
    return 'torch is not installed'
  if not official or not os.path.isfile(os.path.join(official, 'modules', 'generator.py')):
    return f'{official!r} is not a clone of the official code (no modules/generator.py)'
  if not os.path.isfile(os.path.join(official, 'config', 'vox-256.yaml')):
    return f'{official!r} has no config/vox-256.yaml'
  return None


def _stand_in_torchvision() -> None:
  """A `torchvision.models.vgg19` with random weights, so nothing is downloaded."""
  from torch import nn  # pylint: disable=g-import-not-at-top
  widths = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M',
            512, 512, 512, 512, 'M']

  def vgg19(pretrained: bool = False, **_: Any) -> Any:
    del pretrained
    layers, channels = [], 3
    for width in widths:
      if width == 'M':
        layers.append(nn.MaxPool2d(2, 2))
      else:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        channels = width
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    return model

  torchvision = types.ModuleType('torchvision')
  models = types.ModuleType('torchvision.models')
  models.vgg19 = vgg19
  torchvision.models = models
  sys.modules.setdefault('torchvision', torchvision)
  sys.modules.setdefault('torchvision.models', models)


def build(official: str, device: str) -> tuple[dict[str, Any], dict[str, Any]]:
  """The official networks with random weights on `device`, and the official vox-256 config."""
  import torch  # pylint: disable=g-import-not-at-top
  import yaml  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  _stand_in_torchvision()
  if official not in sys.path:
    sys.path.insert(0, official)
  # pylint: disable=g-import-not-at-top
  from modules import discriminator as disc_lib
  from modules import unsupmodel
  from modules.generator import OcclusionAwareGenerator_SPADE
  from modules.keypoint_detector import KPDetector

  class RandomUnsup3D(unsupmodel.Demo_class):
    """The official Unsup3D wrapper without its checkpoint load or fixed cuda device."""

    def __init__(self) -> None:  # pylint: disable=super-init-not-called
      nn.Module.__init__(self)
      self.device = device
      self.detect_human_face = False
      self.render_video = False
      self.output_size, self.image_size = 256, 64
      self.min_depth, self.max_depth, self.border_depth = 0.9, 1.1, 1.05
      self.fov = 10
      self.depth_rescaler = lambda d: (1 + d) / 2 * self.max_depth + (1 - d) / 2 * self.min_depth
      self.netD = unsupmodel.EDDeconv(cin=3, cout=1, nf=64, zdim=256, activation=None)
      self.netD.eval()

  with open(os.path.join(official, 'config', 'vox-256.yaml')) as f:
    config = yaml.full_load(f)
  params = config['model_params']
  common, disc = params['common_params'], params['discriminator_params']
  torch.manual_seed(0)
  nets = {
      'kp': KPDetector(**params['kp_detector_params'], **common),
      'gen': OcclusionAwareGenerator_SPADE(**params['generator_params'], **common),
      'd1': disc_lib.MultiScaleDiscriminator(**disc, **common),
      'd2': disc_lib.MultiScaleDiscriminator2(**disc, **common),
      'd3': disc_lib.MultiScaleDiscriminator3(**disc, **common),
      'unsup': RandomUnsup3D(),
  }
  for net in nets.values():
    net.to(device)
  return nets, config


def _synchronizer(device: str) -> Callable[[], None]:
  import torch  # pylint: disable=g-import-not-at-top
  return torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)


def _timed(fn: Callable[[], Any], warmup: int, repeats: int, sync: Callable[[], None]
           ) -> list[float]:
  """Seconds of each of `repeats` calls of fn after `warmup` untimed ones."""
  for _ in range(warmup):
    fn()
  sync()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    sync()
    times.append(time.perf_counter() - start)
  return times


def make_step(official: str, nets: dict[str, Any], config: dict[str, Any], batch: int, size: int,
              device: str) -> Callable[[], None]:
  """One official training step (generator side, then the discriminators) on a fixed batch."""
  import torch  # pylint: disable=g-import-not-at-top
  from modules.model import DiscriminatorFullModel  # pylint: disable=g-import-not-at-top
  from modules.model import GeneratorFullModel  # pylint: disable=g-import-not-at-top
  del official
  train = config['train_params']
  full_g = GeneratorFullModel(nets['unsup'], nets['kp'], nets['gen'], nets['d1'], nets['d2'],
                              nets['d3'], train).to(device)
  full_d = DiscriminatorFullModel(nets['kp'], nets['gen'], nets['d1'], nets['d2'], nets['d3'],
                                  train).to(device)
  adam = lambda m: torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_g, opt_k = adam(nets['gen']), adam(nets['kp'])
  opt_d = [adam(nets[name]) for name in ('d1', 'd2', 'd3')]
  x = {'source': torch.rand(batch, 3, size, size, device=device),
       'driving': torch.rand(batch, 3, size, size, device=device)}

  def step() -> None:
    losses, generated, d_real, d_gen, n_real, n_gen = full_g(x, 0.25, 0.25)
    sum(v.mean() for v in losses.values()).backward()
    for opt in (opt_g, opt_k):
      opt.step()
      opt.zero_grad()
    for opt in opt_d:
      opt.zero_grad()
    d_losses = full_d(x, generated, d_real, d_gen, n_real, n_gen, 0.25, 0.25)
    sum(v.mean() for v in d_losses.values()).backward()
    for opt in opt_d:
      opt.step()
      opt.zero_grad()
  return step


def make_frame(nets: dict[str, Any], batch: int, size: int, device: str) -> Callable[[], None]:
  """Animation of `batch` driving frames: their keypoints + the generator (eval, no_grad)."""
  import torch  # pylint: disable=g-import-not-at-top
  nets['kp'].eval()
  nets['gen'].eval()
  source = torch.rand(1, 3, size, size, device=device)
  driving = torch.rand(batch, 3, size, size, device=device)
  with torch.no_grad():
    kp_source = nets['kp'](source)
    kp_source = {k: v.expand(batch, *v.shape[1:]) for k, v in kp_source.items()}
    sources = source.expand(batch, -1, -1, -1)

  def frame() -> None:
    with torch.no_grad():
      nets['gen'](sources, kp_source=kp_source, kp_driving=nets['kp'](driving))
  return frame


def _profile_rows(nets: dict[str, Any], batch: int, size: int, device: str
                  ) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
  """(name, forward, forward+backward) per network, at the shapes of the training step."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  from modules.model import Vgg19  # pylint: disable=g-import-not-at-top
  for net in nets.values():
    net.train()
  gen = nets['gen']
  image = torch.rand(batch, 3, size, size, device=device)
  with torch.no_grad():
    kp = {k: v.detach() for k, v in nets['kp'](image).items()}
  features = torch.rand(batch, 256, size // 4, size // 4, device=device)
  stacked = torch.rand(batch, 512, size // 4, size // 4, device=device)
  vgg = Vgg19().to(device)

  def scalar(out: Any) -> Any:
    if isinstance(out, dict):
      return sum(scalar(v) for v in out.values())
    if isinstance(out, (list, tuple)):
      return sum(scalar(v) for v in out)
    return out.float().sum() if torch.is_tensor(out) and out.requires_grad else 0.0

  def pair(fn: Callable[[], Any], input_grad: Any = None) -> tuple[Callable[[], Any], ...]:
    def forward() -> Any:
      with torch.no_grad():
        return fn()

    def both() -> None:
      if input_grad is not None:
        input_grad.requires_grad_(True)
      scalar(fn()).backward()
      for net in nets.values():
        net.zero_grad(set_to_none=True)
      if input_grad is not None:
        input_grad.grad = None
    return forward, both

  def unsup3d() -> Any:  # the official step: 2 * batch single-image calls, no_grad inside
    return [nets['unsup'].run(image[i]) for i in range(batch) for _ in range(2)]

  rows = [('keypoint detector (x3 per step)', *pair(lambda: nets['kp'](image))),
          ('generator (all of it)', *pair(lambda: gen(image, kp_driving=kp, kp_source=kp))),
          ('  dense motion', *pair(lambda: gen.dense_motion_network(
              source_image=image, kp_driving=kp, kp_source=kp))),
          ('  volume renderer', *pair(lambda: gen.Render_model(feature=features))),
          ('  SPADE decoder', *pair(lambda: gen.decoder(stacked)))]
  for scale in (1.0, 0.5, 0.25, 0.125):
    scaled = F.interpolate(image, scale_factor=scale, mode='bilinear').detach().clone()
    rows.append((f'VGG19 (5 maps) at scale {scale:g} (input grad)',
                 *pair(lambda s=scaled: vgg(s), input_grad=scaled)))
  rows.append(('Unsup3D depth+normal of real and generated', unsup3d, unsup3d))
  for name, key, channels in (('discriminator', 'd1', 3), ('discriminator2', 'd2', 1),
                              ('discriminator3', 'd3', 3)):
    x = image[:, :channels].contiguous()
    rows.append((f'{name} (x4 per step)',
                 *pair(lambda k=key, x=x: nets[k]({'prediction_1': x}))))
  return rows


def _operator_seconds(step: Callable[[], None], warmup: int, sync: Callable[[], None],
                      top: int = 15) -> dict[str, Any]:
  """One step under torch.profiler: its wall seconds and the operators' self CPU seconds (the
  `top` largest, then the rest summed)."""
  from torch.profiler import profile, ProfilerActivity  # pylint: disable=g-import-not-at-top
  for _ in range(warmup):
    step()
  sync()
  with profile(activities=[ProfilerActivity.CPU]) as prof:
    start = time.perf_counter()
    step()
    sync()
    wall = time.perf_counter() - start
  rows = sorted(((e.key, e.self_cpu_time_total / 1e6, e.count) for e in prof.key_averages()),
                key=lambda row: -row[1])
  for name, seconds, calls in rows[:top]:
    print(f'{name[:58]:58s} {seconds:10.3f} s {calls:6d} calls', file=sys.stderr, flush=True)
  return {'step_s': wall, 'operators': [list(row) for row in rows[:top]],
          'other_operators_s': sum(row[1] for row in rows[top:])}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--official', required=True, help='a clone of github.com/dfki-av/G3FA')
  parser.add_argument('--mode', choices=('train', 'animate', 'profile', 'ops'),
                      default='train')
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--size', type=int, default=256, help='only 256 works (fixed in the code)')
  parser.add_argument('--steps', type=int, default=3, help='timed calls (median)')
  parser.add_argument('--warmup', type=int, default=1)
  parser.add_argument('--threads', type=int, default=0, help='torch threads (0: its default)')
  parser.add_argument('--device', default='cpu')
  args = parser.parse_args()
  reason = missing_reason(args.official)
  if reason:
    print(json.dumps({'impl': 'official-pytorch', 'skipped': reason}))
    sys.exit(0)
  if args.mode in ('train', 'ops') and args.batch < 2:
    parser.error('--batch must be >= 2 for the training step (batch norm)')
  import torch  # pylint: disable=g-import-not-at-top
  if args.threads:
    torch.set_num_threads(args.threads)
  official = os.path.abspath(args.official)
  nets, config = build(official, args.device)
  sync = _synchronizer(args.device)
  result = {'impl': 'official-pytorch', 'torch': torch.__version__,
            'threads': torch.get_num_threads(), 'device': args.device, 'batch': args.batch,
            'size': args.size}
  if args.mode == 'train':
    times = _timed(make_step(official, nets, config, args.batch, args.size, args.device),
                   args.warmup, args.steps, sync)
    result.update(step_s_median=statistics.median(times), step_s_all=times)
  elif args.mode == 'animate':
    times = _timed(make_frame(nets, args.batch, args.size, args.device), args.warmup, args.steps,
                   sync)
    result.update(frame_s_median=statistics.median(times) / args.batch,
                  batch_s_all=times)
  elif args.mode == 'ops':
    result.update(_operator_seconds(make_step(official, nets, config, args.batch, args.size,
                                              args.device), args.warmup, sync))
  else:
    result['rows'] = []
    for name, forward, both in _profile_rows(nets, args.batch, args.size, args.device):
      fwd = statistics.median(_timed(forward, args.warmup, args.steps, sync))
      fwd_bwd = statistics.median(_timed(both, args.warmup, args.steps, sync))
      result['rows'].append([name, fwd, fwd_bwd])
      print(f'{name:58s} {fwd:10.4f} {fwd_bwd:10.4f}', file=sys.stderr, flush=True)
  print(json.dumps(result))


if __name__ == '__main__':
  main()
