r"""Is what the warp misses learnable from what the generator knows?

  python benchmarks/warp_correction.py --workdir=runs/synthetic --steps=3000

The main job's prediction is its warped source: the blend mask shuts the decoder out within the
first checkpoint (`decoder` in `eval.json`). What the warp misses (the driving frame minus the
warped source: reshading, skin and background a turn uncovers, the mouth's opening, the light's
drift) is the decoder's to render. This asks whether it could, at the CPU's scale, given no blend
to shut it out and no loss but its own: a small U-Net (64×64, 32 → 64 → 128 channels) trained
alone to add a correction to the job's warped source, whose last convolution starts at zero (so
that step 0 scores exactly the warp), from what the generator knows of a pair: the source, the
warped source, the occlusion map and the keypoints as Gaussian heatmaps (the driving frame's, and
the driving minus the source's; `--inputs=images`: the two frames only). It trains with an L1 on
every pair of the job's training clips (each later frame driven from its clip's first frame, as
the held-out pairs are; --train_clips and --train_frames take fewer people, or fewer frames of
each) and reports, every --every steps, the held-out reconstruction L1 of the
corrected warp against copying the source and the warp alone (the same held-out pairs as the
job's `eval.json`). The job's config overrides (frame size, data) must be given again here as
--job_config.* flags. Every pair's inputs are held in memory: 5.5 GB for the job's 3348 training
pairs with the motion's 37 channels.
"""

from __future__ import annotations

import json
import pathlib
import time

from absl import app
from absl import flags
from ml_collections import config_flags

_JOB_CONFIG = config_flags.DEFINE_config_file('job_config', 'configs/synthetic.py',
                                              'The main job\'s config.', lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', 'runs/synthetic', 'The main job\'s workdir.')
_STEPS = flags.DEFINE_integer('steps', 3000, 'Training steps of the correction network.')
_BATCH = flags.DEFINE_integer('batch_size', 16, 'Pairs per step.')
_LR = flags.DEFINE_float('lr', 1e-3, 'Adam learning rate.')
_EVERY = flags.DEFINE_integer('every', 250, 'Score the held-out pairs every this many steps.')
_INPUTS = flags.DEFINE_enum('inputs', 'motion', ['motion', 'images'],
                            'motion: source, warped source, occlusion map and keypoint heatmaps; '
                            'images: the source and warped source only.')
_TRAIN_CLIPS = flags.DEFINE_integer('train_clips', 0, 'Train on the first this many training '
                                    'clips (one person each; 0: all).')
_TRAIN_FRAMES = flags.DEFINE_integer('train_frames', 0, 'Driving frames per training clip, evenly '
                                     'spaced (0: every frame after the first).')
_SEED = flags.DEFINE_integer('seed', 0, 'Initialisation and batch order.')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the figures to this JSON file.')

def generator_inputs(animator, source, driving, with_motion: bool):
  """What the generator knows of each pair, stacked on channels at the frame's size:
  (B, H, W, 6) the source and warped source, then with_motion: + 1 occlusion map + K driving
  keypoint heatmaps + K driving-minus-source heatmaps. Also the warped source (B, H, W, 3)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import motion_warmup  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models import dense_motion  # pylint: disable=g-import-not-at-top
  from g3fa_jax.ops import grid  # pylint: disable=g-import-not-at-top
  out = animator.reconstruct(source, driving)
  warped = np.asarray(out['deformed'], np.float32)
  parts = [np.asarray(source, np.float32), warped]
  if with_motion:
    size = source.shape[1:3]
    occlusion = out['occlusion_map']
    parts.append(np.asarray(jax.image.resize(occlusion, occlusion.shape[:1] + size + (1,),
                                             'bilinear')))
    # The dense motion network's own heatmaps, at the variance the job's network is built with.
    variance = motion_warmup.build_dense_motion(animator.config).kp_variance
    parts.append(np.moveaxis(np.asarray(
        grid.kp2gaussian(out['kp_driving']['value'], size, variance)), 1, -1))
    difference = dense_motion.heatmap_representation(size, out['kp_driving'], out['kp_source'],
                                                     variance)[:, 1:, ..., 0]
    parts.append(np.moveaxis(np.asarray(difference), 1, -1))
  return np.concatenate(parts, axis=-1), warped


def gather_pairs(config, animator, split: str, with_motion: bool, max_clips: int = 0):
  """(inputs, warped source, driving) of the pairs of `split` (`job.heldout_batches`: each
  driving frame, `config.demo.eval_frames` of them per clip or all, with its clip's first frame
  as the source), from the first `max_clips` clips (0: `config.demo.eval_clips`, or all)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  inputs, warped, driving = [], [], []
  for _, _, source, frames in job.heldout_batches(config, 8, split=split, max_clips=max_clips):
    x, w = generator_inputs(animator, source, frames, with_motion)
    inputs.append(x)
    warped.append(w)
    driving.append(frames)
  return tuple(np.concatenate(a) for a in (inputs, warped, driving))


def correction_network():
  """A three-level U-Net: (B, H, W, C) -> (B, H, W, 3) correction, zero at initialisation."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def block(h, channels):
    return nn.relu(nn.Conv(channels, (3, 3))(nn.relu(nn.Conv(channels, (3, 3))(h))))

  def upsampled(h, like):
    return jax.image.resize(h, like.shape[:3] + h.shape[3:], 'bilinear')

  class Correction(nn.Module):

    @nn.compact
    def __call__(self, x):
      full = block(x, 32)
      half = block(nn.avg_pool(full, (2, 2), (2, 2)), 64)
      quarter = block(block(nn.avg_pool(half, (2, 2), (2, 2)), 128), 128)
      half = block(jnp.concatenate([upsampled(quarter, half), half], -1), 64)
      full = block(jnp.concatenate([upsampled(half, full), full], -1), 32)
      return nn.Conv(3, (3, 3), kernel_init=nn.initializers.zeros)(full)

  return Correction()


def train_correction(train, heldout, steps: int, batch_size: int, lr: float, every: int,
                     seed: int, log=print) -> list[dict]:
  """Trains the correction on `train` = (inputs, warped, driving) and returns the held-out
  scores at step 0 and every `every` steps: {'step', 'l1' (corrected warp, clipped to [0, 1]),
  'mean_abs_correction'}."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  net = correction_network()
  params = net.init(jax.random.PRNGKey(seed), train[0][:1])
  optimizer = optax.adam(lr)
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state, x, w, d):
    loss, grads = jax.value_and_grad(lambda p: jnp.abs(w + net.apply(p, x) - d).mean())(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  @jax.jit
  def score(params, x, w, d):
    correction = net.apply(params, x)
    return (jnp.abs(jnp.clip(w + correction, 0., 1.) - d).sum(),
            jnp.abs(correction).sum())

  def heldout_scores(at_step: int) -> dict:
    x, w, d = heldout
    sums = np.zeros(2)
    for b in range(0, len(x), 32):
      sums += np.asarray(score(params, x[b:b + 32], w[b:b + 32], d[b:b + 32]))
    return {'step': at_step, 'l1': float(sums[0] / d.size),
            'mean_abs_correction': float(sums[1] / d.size)}

  order = np.random.default_rng(seed)
  history = [heldout_scores(0)]
  start = time.time()
  for i in range(1, steps + 1):
    batch = order.integers(0, len(train[0]), batch_size)
    params, opt_state, _ = step(params, opt_state, *(a[batch] for a in train))
    if i % every == 0 or i == steps:
      history.append(heldout_scores(i))
      log(f"step {i} ({time.time() - start:.0f} s): held-out L1 {history[-1]['l1']:.4f}")
  return history


def main(argv) -> None:
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
  from g3fa_jax.inference.animator import Animator  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(_WORKDIR.value)
  config = job.resolve_paths(_JOB_CONFIG.value, workdir)
  animator = Animator.from_checkpoint(workdir / 'checkpoints')
  with_motion = _INPUTS.value == 'motion'
  start = time.time()
  heldout = gather_pairs(config, animator, 'test', with_motion)
  train_config = config.copy_and_resolve_references()
  train_config.demo.eval_frames = _TRAIN_FRAMES.value
  train = gather_pairs(train_config, animator, 'train', with_motion,
                       max_clips=_TRAIN_CLIPS.value or 10 ** 9)
  copy = float(np.abs(heldout[0][..., :3] - heldout[2]).mean())
  warp = float(np.abs(heldout[1] - heldout[2]).mean())
  print(f'{workdir}: {len(train[0])} training pairs, {len(heldout[0])} held-out '
        f'({time.time() - start:.0f} s); inputs: {_INPUTS.value} ({train[0].shape[-1]} channels)')
  print(f'held-out L1: copying the source {copy:.4f}, the warped source {warp:.4f} '
        f'({warp / copy:.3f}x copying)', flush=True)
  history = train_correction(train, heldout, _STEPS.value, _BATCH.value, _LR.value, _EVERY.value,
                             _SEED.value, log=lambda line: print(line, flush=True))
  best = min(history, key=lambda h: h['l1'])
  print(f"the corrected warp: {history[-1]['l1']:.4f} ({history[-1]['l1'] / copy:.3f}x copying) "
        f"at step {history[-1]['step']}, best {best['l1']:.4f} ({best['l1'] / copy:.3f}x) at "
        f"step {best['step']}; the warp alone {warp / copy:.3f}x")
  if _JSON_OUT.value:
    figures = {'workdir': str(workdir), 'inputs': _INPUTS.value, 'training_pairs': len(train[0]),
               'training_clips': _TRAIN_CLIPS.value, 'training_frames': _TRAIN_FRAMES.value,
               'heldout_pairs': len(heldout[0]), 'source_copy_l1': copy, 'warped_source_l1': warp,
               'history': history}
    pathlib.Path(_JSON_OUT.value).write_text(json.dumps(figures, indent=1))


if __name__ == '__main__':
  app.run(main)
