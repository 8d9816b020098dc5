"""Where a training step's time goes: each network's forward and forward+backward, timed alone.

  python benchmarks/profile_step.py --config=configs/synthetic.py
  python benchmarks/profile_step.py --config=configs/vox.py --batch_size=2

Each row jit-compiles one network (or one part of the generator) at the shapes it has in the
training step and prints the median seconds of a forward pass and of a forward+backward pass
(gradients w.r.t. the parameters for trained networks; w.r.t. the input for the frozen VGG19 and
Unsup3D, as in the step), after one warm-up call. Calls in the step: the keypoint detector runs 3
times (source, driving, warped driving), VGG19 once per pyramid scale on the generated half, each
discriminator twice in each phase. The full step is timed last for comparison. Weights are random
(speed does not depend on them).

With --official PATH (a clone of github.com/dfki-av/G3FA; torch needed) the same rows of the
official PyTorch networks are timed afterwards in a subprocess (`official_torch.py --mode
profile`) and printed alongside, with the ratio official / ours per row (> 1: ours is faster).
--json prints everything as one JSON line as well.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import statistics
import time
from typing import Any, Callable, Optional

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/synthetic.py', 'Training config.',
                                          lock_config=False)
_BATCH = flags.DEFINE_integer('batch_size', None, 'Global batch (default: the config\'s).')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls per row.')
_OFFICIAL = flags.DEFINE_string('official', None, 'A clone of the official code: profile it too.')
_OFFICIAL_DEVICE = flags.DEFINE_string('official_device', None, 'torch device of the official '
                                       'side (default: cuda when JAX runs on a GPU, else cpu).')
_JSON = flags.DEFINE_bool('json', False, 'Also print the result as one JSON line.')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the result to this JSON file.')
_SKIP_STEP = flags.DEFINE_bool('skip_step', False, 'Do not time the full step at the end.')

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import side_by_side  # pylint: disable=g-import-not-at-top,wrong-import-position


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  jax.block_until_ready(fn())  # Compile and warm up.
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _row(name: str, apply: Callable[[Any, Any], Any], params: Any, inputs: Any, repeats: int,
         wrt_input: bool = False) -> tuple[str, float, float]:
  """(name, forward s, forward+backward s) of apply(params, inputs) -> pytree of arrays."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def scalar(p, x):
    return sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree_util.tree_leaves(apply(p, x)))

  forward = jax.jit(apply)
  backward = jax.jit(jax.grad(scalar, argnums=1 if wrt_input else 0))
  return (name, _median_seconds(lambda: forward(params, inputs), repeats),
          _median_seconds(lambda: backward(params, inputs), repeats))


def main(argv) -> None:
  del argv
  from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
  xla_flags.tune_cpu()
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from g3fa_jax import losses as losses_lib  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models import networks  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models.dense_motion import DenseMotionNetwork  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models.spade import SPADEDecoder  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models.volume_renderer import RenderModel  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import pretrained  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top

  import step_setup  # pylint: disable=g-import-not-at-top

  config = step_setup.override(_CONFIG.value, _BATCH.value)
  batch, size = int(config.batch_size), int(config.image_size)
  repeats = _REPEATS.value
  rng = jax.random.PRNGKey(0)
  image = jax.random.uniform(rng, (batch, size, size, 3))
  nets = step_lib.Networks.from_config(config)
  rows = []

  def mutable_apply(module):
    def apply(variables, *args):
      out, _ = module.apply(variables, *args, train=True, mutable=['batch_stats', 'spectral'])
      return out
    return apply

  def split(variables):
    return variables['params'], {k: v for k, v in variables.items() if k != 'params'}

  def with_params(apply, rest):
    return lambda p, x: apply({'params': p, **rest}, *x)

  kp_vars = networks.init_variables('kp_detector', config, rng)
  kp_params, kp_rest = split(kp_vars)
  kp = jax.jit(functools.partial(nets.kp_detector.apply, train=False))(kp_vars, image)
  rows.append(_row('keypoint detector (x3 per step)', with_params(mutable_apply(nets.kp_detector),
                                                                  kp_rest), kp_params, (image,),
                   repeats))

  gen_vars = networks.init_variables('generator', config, rng)
  gen_params, gen_rest = split(gen_vars)
  rows.append(_row('generator (all of it)', with_params(mutable_apply(nets.generator), gen_rest),
                   gen_params, (image, kp, kp), repeats))

  gp = config.model.generator_params
  common = config.model.common_params
  dense = DenseMotionNetwork(num_kp=common.num_kp, num_channels=common.num_channels,
                             estimate_occlusion_map=gp.estimate_occlusion_map,
                             **gp.dense_motion_params.to_dict())
  dense_vars = jax.jit(functools.partial(dense.init, train=False))(rng, image, kp, kp)
  dense_params, dense_rest = split(dense_vars)
  rows.append(_row('  dense motion', with_params(mutable_apply(dense), dense_rest), dense_params,
                   (image, kp, kp), repeats))
  feature_size = size // 2 ** int(gp.num_down_blocks)
  width = min(int(gp.max_features), int(gp.block_expansion) * 2 ** int(gp.num_down_blocks))
  features = jax.random.uniform(rng, (batch, feature_size, feature_size, width))
  render = RenderModel(**gp.render_params.to_dict())
  render_vars = jax.jit(functools.partial(render.init, train=False))(rng, features)
  render_params, render_rest = split(render_vars)
  rows.append(_row('  volume renderer', with_params(mutable_apply(render), render_rest),
                   render_params, (features,), repeats))
  decoder = SPADEDecoder(int(gp.decoder_hidden_channels))
  stacked = jnp.concatenate([features, features], axis=-1)
  decoder_vars = jax.jit(decoder.init)(rng, stacked)
  rows.append(_row('  SPADE decoder', lambda p, x: decoder.apply({'params': p}, *x),
                   decoder_vars['params'], (stacked,), repeats))

  frozen = pretrained.frozen_variables(config)
  scales = tuple(float(s) for s in config.train.scales)
  vgg_apply = lambda v, x: nets.vgg19.apply(v, x[0])
  for scale in scales:
    scaled = losses_lib.image_pyramid(image, (scale,))[scale]
    rows.append(_row(f'VGG19 ({nets.vgg19.num_outputs} maps) at scale {scale:g} (input grad)',
                     vgg_apply, frozen['vgg19'], (scaled,), repeats, wrt_input=True))
  settings = step_lib.StepSettings.from_config(config)
  rows.append(_row('Unsup3D depth+normal of real and generated (input grad)',
                   lambda v, x: step_lib.geometry_maps(nets, settings, v, x[0], x[1]),
                   frozen['unsup3d'], (image, image), repeats, wrt_input=True))

  for name, channels in networks.DISCRIMINATOR_CHANNELS.items():
    disc_vars = networks.init_variables(name, config, rng)
    disc_params, disc_rest = split(disc_vars)
    rows.append(_row(f'{name} (x4 per step)', with_params(mutable_apply(getattr(nets, name)),
                                                          disc_rest),
                     disc_params, (image[..., :channels],), repeats))

  step_seconds = None if _SKIP_STEP.value else _full_step_seconds(config, repeats)
  official = None
  if _OFFICIAL.value:
    official = side_by_side.run_official(
        _OFFICIAL.value, 'profile', batch, size, steps=repeats, warmup=1,
        device=side_by_side.official_device(_OFFICIAL_DEVICE.value, jax.default_backend()))
  print(f'{config.image_size}x{config.image_size}, batch {batch}, {jax.devices()[0].platform}, '
        f'{side_by_side.machine()}')
  print(format_table(rows, official, step_seconds))
  result = {'benchmark': 'profile', 'batch_size': batch, 'image_size': size,
            'machine': side_by_side.machine(), 'ours': [list(r) for r in rows],
            'official': official, 'full_step_s': step_seconds}
  if _JSON.value:
    print(json.dumps(result))
  if _JSON_OUT.value:
    with open(_JSON_OUT.value, 'w') as f:
      json.dump(result, f, indent=1)


def _full_step_seconds(config, repeats: int) -> float:
  """Median seconds of the jitted training step (`step_setup`: a toy batch of the config's shape)."""
  import step_setup  # pylint: disable=g-import-not-at-top
  bench = step_setup.jitted_train_step(config, steps_per_epoch=100)
  return _median_seconds(bench.run, repeats)


def format_table(rows: list[tuple[str, float, float]], official: Optional[dict[str, Any]],
                 step_seconds: Optional[float]) -> str:
  """Our rows, and the official ones of the same name with official / ours ratios, as text."""
  by_name = {}
  if official and 'rows' in official:
    by_name = {name.strip(): (fwd, both) for name, fwd, both in official['rows']}
  header = f'{"network":52s} {"fwd s":>8s} {"fwd+bwd s":>9s}'
  if official is not None:
    header += f' | {"official fwd":>12s} {"fwd+bwd":>8s} {"ratio fwd":>9s} {"fwd+bwd":>8s}'
  lines = [header]
  for name, fwd, both in rows:
    line = f'{name:52s} {fwd:8.4f} {both:9.4f}'
    theirs = by_name.get(name.strip().replace(' (input grad)', '').strip()) or by_name.get(
        name.strip())
    if theirs:
      line += (f' | {theirs[0]:12.4f} {theirs[1]:8.4f} {theirs[0] / fwd:9.2f} '
               f'{theirs[1] / both:8.2f}')
    lines.append(line)
  if step_seconds is not None:
    lines.append(f'{"full training step":52s} {"":8s} {step_seconds:9.4f}')
  if official is not None and 'skipped' in official:
    lines.append(f'official: skipped ({official["skipped"]})')
  return '\n'.join(lines)


if __name__ == '__main__':
  app.run(main)
