"""The main job on synthetic talking heads (`configs/synthetic.py`), end to end and resumable.

  python run_train.py --config=configs/synthetic.py --workdir=runs/synthetic
      [--config.train.num_train_steps=100 ...]

(`config.job = 'synthetic_demo'` makes `run_train.py` run this job, `run`, instead of training
alone.)

`prepare(config, workdir)` makes every input the trainer needs and returns the config pointing to
them: the synthetic clips (WORKDIR/data), an inverse renderer for this domain (Unsup3D's depth net
fitted to the clips' ground-truth depth, WORKDIR/unsup3d) and RANDOM VGG19 weights
(WORKDIR/vgg19_random). During training, `LearningCurve` measures the held-out reconstruction L1
at every checkpoint (WORKDIR/learning_curve.json, learning_curve.png). `finish(config, workdir)`
writes the final figures against step 0 and the no-motion baseline (WORKDIR/eval.json) and the
animation (WORKDIR/animation.mp4, contact sheet WORKDIR/animation.png; its inputs
WORKDIR/animation_source.png and animation_driving.mp4, and in eval.json the
`python -m g3fa_jax.animate` command that animates them again). Each step is skipped when its
output already exists.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import shlex
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import serialization

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.animate.video import Mp4Writer
from g3fa_jax.data import index as index_lib
from g3fa_jax.data import records
from g3fa_jax.data import shards
from g3fa_jax.data import source as source_lib
from g3fa_jax.demo import figures
from g3fa_jax.demo import motion_warmup
from g3fa_jax.demo import true_motion
from g3fa_jax.demo import truth_pairs
from g3fa_jax.inference.animator import Animator
from g3fa_jax.models import inverse_renderer
from g3fa_jax.models import networks
from g3fa_jax.ops import resize
from g3fa_jax.ops import run_once
from g3fa_jax.synthetic import dataset as dataset_lib
from g3fa_jax.synthetic import writer as synthetic_writer
from g3fa_jax.train import input_pipeline
from g3fa_jax.train import pretrained
from g3fa_jax.train import state as state_lib
from g3fa_jax.train import trainer

DATA_DIR = 'data'
UNSUP3D_DIR = 'unsup3d'
VGG19_DIR = 'vgg19_random'
CHECKPOINT_DIR = 'checkpoints'
EVAL_FILE = 'eval.json'
START_EVAL_FILE = 'eval_start.json'
VIDEO_FILE = 'animation.mp4'
SHEET_FILE = 'animation.png'
# The animation's inputs as files, for `python -m g3fa_jax.animate` (`animate_command`).
ANIMATION_SOURCE_FILE = 'animation_source.png'
ANIMATION_DRIVING_FILE = 'animation_driving.mp4'
RECONSTRUCTION_FILE = 'reconstruction.png'
MOTION_FILE = 'motion.png'
CURVE_FILE = 'learning_curve.json'
CURVE_PLOT_FILE = 'learning_curve.png'
MOTION_WARMUP_FILE = 'motion_warmup.msgpack'
# Targets of the depth fit: inside tanh's reach of Unsup3D's [0.9, 1.1] canonical range.
DEPTH_TARGET_RANGE = (0.905, 1.095)
# Unsup3D's canonical depth fixes the two leftmost and rightmost columns.
BORDER_COLUMNS = 2
# eval.json's beats_source_copy needs the held-out L1 at least 1 % below the no-motion baseline:
# a model that has learnt to copy the source exactly ties with it to 4 digits, and is no win.
BEAT_MARGIN = 0.99
VGG19_RANDOM_MESSAGE = (
    'VGG19 has RANDOM weights (no ImageNet weights offline): the perceptual loss compares random '
    'convolutional features, which still rewards matching colours and edges.')


def _log(message: str, *args: Any) -> None:
  logging.info(message, *args)
  print(message % args if args else message, flush=True)


def settings_from_config(config: ml_collections.ConfigDict) -> dataset_lib.Settings:
  s = config.synthetic
  return dataset_lib.Settings(videos=int(s.videos), identities=int(s.identities),
                              frames=int(s.frames), size=int(config.image_size), seed=int(s.seed))


def resolve_paths(config: ml_collections.ConfigDict, workdir: str | os.PathLike
                  ) -> ml_collections.ConfigDict:
  """A copy of the config whose empty data/pretrained paths point into the workdir."""
  config = ml_collections.ConfigDict(config.to_dict())
  workdir = pathlib.Path(workdir).absolute()
  if not config.data.data_dir:
    config.data.data_dir = str(workdir / DATA_DIR)
  if not config.pretrained.unsup3d:
    config.pretrained.unsup3d = str(workdir / UNSUP3D_DIR)
  if not config.pretrained.vgg19:
    config.pretrained.vgg19 = str(workdir / VGG19_DIR)
  return config


# ----------------------------------------------------------------------------------------- data


def prepare_data(config: ml_collections.ConfigDict) -> None:
  """Renders the synthetic clips into config.data.data_dir unless they are all there."""
  data_dir = pathlib.Path(config.data.data_dir)
  settings = settings_from_config(config)
  try:
    splits = index_lib.load_index(data_dir)['splits']
    have = sum(len(s['record_identity']) for s in splits.values())
  except (FileNotFoundError, ValueError, KeyError):
    have = -1
  if have == settings.videos:
    _log('Synthetic data: %d clips already in %s (reused)', have, data_dir)
    return
  _log('Synthetic data: rendering %d clips of %d frames (%dx%d) into %s', settings.videos,
       settings.frames, settings.size, settings.size, data_dir)
  start = time.time()
  summary = synthetic_writer.generate(data_dir, settings, workers=int(config.synthetic.workers))
  _log('Synthetic data: done in %.0f s (%s)', time.time() - start,
       summary.text(data_dir).replace('\n', '; '))


def _split_source(config: ml_collections.ConfigDict, split: str) -> source_lib.ClipSource:
  return source_lib.ClipSource.from_dir(config.data.data_dir, split)


def _decode_frames(record: dict[str, Any], frame_indices) -> np.ndarray:
  """(k, H, W, 3) float32 in [0, 1]."""
  return np.stack([records.decode_image(record['frames'][i]) for i in frame_indices]
                  ).astype(np.float32) / 255.


def frames_and_truth(config: ml_collections.ConfigDict, split: str, keys: Sequence[str],
                     per_clip: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Frames of every clip of `split` (per_clip evenly spaced ones per clip; 0: all) and their
  ground truth: images (N, H, W, 3) float32 in [0, 1], truth (N, len(keys)) float32 from the
  records' `synthetic` entries (e.g. 'yaw', 'pitch', 'roll', 'mouth'), for the fixed readers of
  the benchmarks."""
  clips = _split_source(config, split)
  images, truth = [], []
  for c in range(len(clips)):
    record = clips[c]
    n = record['num_frames']
    idx = np.unique(np.linspace(0, n - 1, per_clip or n).round().astype(int))
    if 'synthetic' not in record:
      raise ValueError(f'{config.data.data_dir}: clip {c} of {split} has no ground truth (not '
                       'synthetic data)')
    images.append(_decode_frames(record, idx))
    truth.append(np.stack([np.asarray(record['synthetic'][k])[idx] for k in keys], 1))
  return np.concatenate(images), np.concatenate(truth).astype(np.float32)


# ------------------------------------------------------------------------------ inverse renderer


def depth_training_set(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """Train-split frames (N, S, S, 3) in [0, 1] and their ground-truth depth (N, S, S)."""
  clips = _split_source(config, 'train')
  per_clip = int(config.demo.unsup3d_frames_per_clip)
  images, depths = [], []
  for i in range(len(clips)):
    record = clips[i]
    n = record['num_frames']
    frames = np.unique(np.linspace(0, n - 1, min(per_clip, n)).round().astype(int))
    images.append(_decode_frames(record, frames))
    depths.append(dataset_lib.read_geometry(record, frames)[0][..., 0])
  return np.concatenate(images), np.concatenate(depths).astype(np.float32)


def depth_loss(raw: jax.Array, target: jax.Array, cfg: Any) -> jax.Array:
  """L1 between Unsup3D's canonical depth of raw outputs (B, S, S) and clipped targets (B, S, S),
  without the fixed border columns."""
  depth = inverse_renderer.canonical_depth(raw, cfg.min_depth, cfg.max_depth, cfg.border_depth)
  target = jnp.clip(target, *DEPTH_TARGET_RANGE)
  b = BORDER_COLUMNS
  return jnp.mean(jnp.abs(depth - target)[:, :, b:-b])


def fit_depth_network(config: ml_collections.ConfigDict, images: np.ndarray, depths: np.ndarray,
                      num_steps: int, what: str = 'Inverse renderer') -> dict[str, Any]:
  """Fits the Unsup3D depth net (config.unsup3d) to frames (N, S, S, 3) in [0, 1] and their
  ground-truth depth (N, S, S) with Adam (demo.unsup3d_learning_rate, batches of
  demo.unsup3d_batch_size); returns its variables (host arrays). Logs as `what`."""
  cfg = config.unsup3d
  s = config.demo
  size = int(cfg.image_size)
  if images.shape[1] != size:
    images = np.asarray(resize.resize_bilinear(jnp.asarray(images), (size, size),
                                               align_corners=False))
    depths = np.asarray(resize.resize_bilinear(jnp.asarray(depths[..., None]), (size, size),
                                               align_corners=False))[..., 0]
  module = networks.build_network('unsup3d', config)
  rng = jax.random.PRNGKey(int(config.seed) + 7)
  variables = pretrained.random_variables('unsup3d', config, rng)
  optimizer = optax.adam(float(s.unsup3d_learning_rate))
  opt_state = optimizer.init(variables['params'])

  def loss_fn(params, x, target):
    raw = module.apply({**variables, 'params': params}, x * 2. - 1.)[..., 0]
    return depth_loss(raw, target, cfg)

  @jax.jit
  def step(params, opt_state, x, target):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, target)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  batch = min(int(s.unsup3d_batch_size), len(images))
  order = np.random.default_rng(int(config.seed)).permutation
  _log('%s: fitting Unsup3D depth (nf=%d, zdim=%d) to the ground-truth depth of %d frames, %d '
       'steps of %d', what, cfg.nf, cfg.zdim, len(images), num_steps, batch)
  params, start, perm, pos, losses = variables['params'], time.time(), order(len(images)), 0, []
  for i in range(num_steps):
    if pos + batch > len(perm):
      perm, pos = order(len(images)), 0
    idx = perm[pos:pos + batch]
    pos += batch
    params, opt_state, loss = step(params, opt_state, images[idx], depths[idx])
    losses.append(loss)
    if (i + 1) % 50 == 0 or i + 1 == num_steps:
      _log('%s: step %d/%d, depth L1 %.5f (%.0f s)', what, i + 1, num_steps,
           float(np.mean(jax.device_get(losses))), time.time() - start)
      losses = []
  return jax.device_get({**variables, 'params': params})


def train_inverse_renderer(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Fits the Unsup3D depth net (config.unsup3d) to the synthetic training clips' depth
  (`fit_depth_network`, demo.unsup3d_steps); returns its variables and writes them as item
  'unsup3d' of an orbax checkpoint at config.pretrained.unsup3d."""
  images, depths = depth_training_set(config)
  num_steps = int(config.demo.unsup3d_steps)
  variables = fit_depth_network(config, images, depths, num_steps)
  ckpt.save_checkpoint(config.pretrained.unsup3d, num_steps, {'unsup3d': variables},
                       {'unsup3d': config.unsup3d.to_dict(),
                        'synthetic': config.synthetic.to_dict(), 'demo': config.demo.to_dict()},
                       source='g3fa_jax.demo.job: Unsup3D depth fitted to synthetic depth')
  return variables


def prepare_inverse_renderer(config: ml_collections.ConfigDict) -> None:
  path = pathlib.Path(config.pretrained.unsup3d)
  if path.exists() and any(p.name.isdigit() for p in path.iterdir()):
    _log('Inverse renderer: reusing %s', path)
    return
  train_inverse_renderer(config)


def prepare_vgg19(config: ml_collections.ConfigDict) -> None:
  """Writes seeded RANDOM VGG19 weights as item 'vgg19' at config.pretrained.vgg19."""
  _log(VGG19_RANDOM_MESSAGE)
  path = pathlib.Path(config.pretrained.vgg19)
  if path.exists() and any(p.name.isdigit() for p in path.iterdir()):
    return
  variables = pretrained.random_variables('vgg19', config, jax.random.PRNGKey(int(config.seed) + 2))
  ckpt.save_checkpoint(path, 0, {'vgg19': jax.device_get(variables)}, {'random': True},
                       source='RANDOM VGG19 weights (g3fa_jax.demo.job)')


# ---------------------------------------------------------------------------------- evaluation


def untrained_animator(config: ml_collections.ConfigDict):
  """The Animator of the networks the trainer starts from (its step-0 weights, to float rounding:
  each network compiled as code that runs once, `g3fa_jax.ops.run_once`)."""
  init_rng, _ = jax.random.split(jax.random.PRNGKey(config.seed))
  names = state_lib.TRAINED_NETWORKS
  variables = {name: run_once.call_once(
      functools.partial(networks.init_variables, name, config),
      jax.random.fold_in(init_rng, names.index(name))) for name in ('kp_detector', 'generator')}
  return Animator(config, variables['kp_detector'], variables['generator'])


def heldout_batches(config: ml_collections.ConfigDict, batch_size: int, split: str = 'test',
                    max_clips: int = 0
                    ) -> Iterator[tuple[dict[str, Any], list[int], np.ndarray, np.ndarray]]:
  """The held-out pairs, in batches: (record, driving frame indices, source (b, H, W, 3),
  driving (b, H, W, 3)) with the test clip's first frame as the source (repeated) and the other
  frames (or `demo.eval_frames` of them) as driving frames; frames float32 in [0, 1]. The same
  pairs of the first `max_clips` clips of another `split` with split='train'."""
  clips = _split_source(config, split)
  n_clips = int(max_clips or config.demo.eval_clips) or len(clips)
  max_frames = int(config.demo.eval_frames)
  for c in range(min(n_clips, len(clips))):
    record = clips[c]
    n = record['num_frames']
    driving_idx = list(range(1, n))
    if max_frames:
      driving_idx = sorted(set(np.linspace(1, n - 1, max_frames).round().astype(int).tolist()))
    frames = _decode_frames(record, [0] + driving_idx)
    source, driving = frames[:1], frames[1:]
    for b in range(0, len(driving), batch_size):
      d = driving[b:b + batch_size]
      yield record, driving_idx[b:b + batch_size], np.repeat(source, len(d), axis=0), d


def _heldout_mean_l1(predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
                     config: ml_collections.ConfigDict, batch_size: int) -> float:
  """Mean |predict(source, driving) - driving| over the held-out pairs (`heldout_batches`)."""
  total, count = 0., 0
  for _, _, source, driving in heldout_batches(config, batch_size):
    total += float(np.abs(predict(source, driving) - driving).mean()) * len(driving)
    count += len(driving)
  return total / max(count, 1)


def _score_with_l1(score: true_motion.TrueMotionScore,
                   run: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]
                   ) -> tuple[dict[str, float], float]:
  """`score`'s figures and the held-out mean L1 from one pass over the pairs: `run(source,
  driving)` -> (prediction (b, H, W, 3), sampling grid, source keypoints, driving keypoints). The
  score's pairs are those of `_heldout_mean_l1` at batch 8, so the L1 is the same figure."""
  errors = []

  def motion(source: np.ndarray, driving: np.ndarray):
    prediction, *outputs = run(source, driving)
    errors.append((float(np.abs(np.asarray(prediction) - driving).mean()), len(driving)))
    return outputs

  figures = score(motion)
  return figures, sum(e * n for e, n in errors) / max(sum(n for _, n in errors), 1)


def decoder_figures(blends: Sequence[tuple[float, float, int]]) -> dict[str, float]:
  """How much the decoder renders, from per-batch (mean of 1 - blend mask, the warped source's
  L1, pairs) of a generator with `blend_warped_source` (prediction = m * warped source + (1 - m)
  * decoded frame): 'decoder_share', the decoder's mean weight in the prediction (0: the
  prediction is the warped source), and 'warped_source_heldout_l1', the warped source's L1 alone
  (the prediction's minus this is what the decoder adds)."""
  pairs = sum(n for _, _, n in blends)
  return {'decoder_share': sum(share * n for share, _, n in blends) / pairs,
          'warped_source_heldout_l1': sum(l1 * n for _, l1, n in blends) / pairs}


def keypoint_pose_correlation(animator, config: ml_collections.ConfigDict) -> dict[str, float]:
  """Do the keypoints move with the head? Over every held-out clip, the keypoints' mean
  displacement from the clip's first frame (x and y, in [-1, 1] units) against the ground-truth
  change of yaw and pitch (degrees); returns the Pearson correlations 'yaw_x' and 'pitch_y'
  (in [-1, 1]; the sign depends on the conventions, the magnitude is what matters; 0 for
  keypoints that do not move)."""
  clips = _split_source(config, 'test')
  dx, dy, yaw, pitch = [], [], [], []
  for c in range(len(clips)):
    record = clips[c]
    frames = _decode_frames(record, range(record['num_frames']))
    mean_kp = np.asarray(animator.keypoints(frames)['value']).mean(axis=1)  # (T, 2)
    dx.append(mean_kp[:, 0] - mean_kp[0, 0])
    dy.append(mean_kp[:, 1] - mean_kp[0, 1])
    angles = record['synthetic']
    yaw.append(np.asarray(angles['yaw']) - angles['yaw'][0])
    pitch.append(np.asarray(angles['pitch']) - angles['pitch'][0])
  return {'yaw_x': _pearson(np.concatenate(yaw), np.concatenate(dx)),
          'pitch_y': _pearson(np.concatenate(pitch), np.concatenate(dy))}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
  a, b = a - a.mean(), b - b.mean()
  denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
  return float((a * b).sum() / denominator) if denominator > 0 else 0.


def heldout_l1(animator, config: ml_collections.ConfigDict, batch_size: int = 8) -> float:
  """Held-out reconstruction L1 of `animator` (images in [0, 1]; see `_heldout_mean_l1`)."""
  return _heldout_mean_l1(lambda s, d: animator.reconstruct(s, d)['prediction'], config,
                          batch_size)


def source_copy_l1(config: ml_collections.ConfigDict) -> float:
  """The no-motion baseline on the same frames: the source frame itself as the prediction.

  A model that has learnt motion beats it; one that only reproduces the source ties it."""
  return _heldout_mean_l1(lambda s, d: s, config, batch_size=64)


def animation_pair(identities: Sequence[str], yaws: Sequence[np.ndarray | None]
                   ) -> tuple[int, int]:
  """(source clip, driving clip) for the demo's animation: the driving clip is the one whose head
  turns the most (largest yaw range, in degrees), so the animation has a turn to follow; the source
  is the first frame, closest to frontal, of a clip of another person (of another clip of the same
  one if there is only one). Without yaws (all None) the first clip is driven by the first clip
  of another person."""
  if not identities:
    raise ValueError('animation_pair: no clips')
  known = [i for i, y in enumerate(yaws) if y is not None and len(y)]
  if not known:
    drv = next((i for i, ident in enumerate(identities) if ident != identities[0]),
               1 if len(identities) > 1 else 0)
    return 0, drv
  drv = max(known, key=lambda i: float(np.ptp(yaws[i])))
  others = ([i for i in known if identities[i] != identities[drv]]
            or [i for i in known if i != drv] or [drv])
  return min(others, key=lambda i: abs(float(yaws[i][0]))), drv


def clip_poses(record: dict[str, Any]) -> np.ndarray | None:
  """(T, 3) ground-truth (yaw, pitch, roll) in degrees of a synthetic clip's frames, or None."""
  if 'synthetic' not in record:
    return None
  truth = record['synthetic']
  return np.stack([np.asarray(truth[k], np.float32) for k in ('yaw', 'pitch', 'roll')], axis=-1)


def _test_records_and_poses(config: ml_collections.ConfigDict
                            ) -> tuple[list[dict[str, Any]], list[np.ndarray | None]]:
  """The held-out records and each one's `clip_poses` (None for clips without them)."""
  clips = _split_source(config, 'test')
  records = [clips[i] for i in range(len(clips))]
  return records, [clip_poses(r) for r in records]


def _yaws(poses: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
  """Each clip's per-frame yaw in degrees (the first column of `clip_poses`), or None."""
  return [None if p is None else p[:, 0] for p in poses]


def reference_frame(source_pose: np.ndarray | None, driving_poses: np.ndarray | None) -> int:
  """The driving frame relative motion starts from: the one whose head pose (yaw, pitch, roll,
  degrees) is nearest the source's, as FOMM's demo picks it with `--find-best-frame` (there by
  landmarks; here the synthetic clips know their poses). 0 without poses."""
  if source_pose is None or driving_poses is None or not len(driving_poses):
    return 0
  distances = np.sum((np.asarray(driving_poses) - np.asarray(source_pose)) ** 2, axis=-1)
  return int(np.argmin(distances))


@dataclasses.dataclass(frozen=True)
class AnimationInputs:
  """What the demo's animation animates (`animation_inputs`).

  source: (H, W, 3) float32 in [0, 1], the first frame of a held-out person's clip; driving:
  (T, H, W, 3) the held-out clip of another person whose head turns the most; reference: the
  driving frame relative motion starts from; source_pose (3,) and driving_poses (T, 3): the
  ground-truth (yaw, pitch, roll) in degrees (None for clips without them); driving_mouth (T,)
  the driving clip's ground-truth mouth opening in [0, 1] (None likewise).
  """
  source: np.ndarray
  driving: np.ndarray
  reference: int
  source_pose: np.ndarray | None
  driving_poses: np.ndarray | None
  source_identity: str
  driving_identity: str
  driving_mouth: np.ndarray | None = None

  @property
  def yaw_range(self) -> float:
    return 0. if self.driving_poses is None else float(np.ptp(self.driving_poses[:, 0]))


def animation_inputs(config: ml_collections.ConfigDict) -> AnimationInputs:
  """The source frame and driving clip of the demo's animation (`animation_pair`: the held-out
  clip whose head turns the most, driving another person's first frame), at most
  `demo.video_frames` frames of it, and the driving frame in the source's pose
  (`reference_frame`)."""
  records, poses = _test_records_and_poses(config)
  identities = [r['identity'] for r in records]
  src, drv = animation_pair(identities, _yaws(poses))
  n = records[drv]['num_frames']
  if int(config.demo.video_frames):
    n = min(n, int(config.demo.video_frames))
  source_pose = None if poses[src] is None else poses[src][0]
  driving_poses = None if poses[drv] is None else poses[drv][:n]
  return AnimationInputs(
      source=_decode_frames(records[src], [0])[0], driving=_decode_frames(records[drv], range(n)),
      reference=reference_frame(source_pose, driving_poses), source_pose=source_pose,
      driving_poses=driving_poses, source_identity=identities[src],
      driving_identity=identities[drv],
      driving_mouth=(np.asarray(records[drv]['synthetic']['mouth'], np.float32)[:n]
                     if 'synthetic' in records[drv] else None))


def write_animation(animator, config: ml_collections.ConfigDict, path: str | os.PathLike,
                    sheet_path: str | os.PathLike | None = None,
                    inputs_dir: str | os.PathLike | None = None) -> tuple[int, int]:
  """Animates the demo's source frame with its driving clip (`animation_inputs`), the motion
  relative to the driving frame in the source's pose; writes [source | driving | generated] frames
  as an mp4 and, with `sheet_path`, a contact sheet PNG (source, a row of driving frames, the row
  of generated frames); with `inputs_dir`, the source frame (ANIMATION_SOURCE_FILE) and the
  driving clip (ANIMATION_DRIVING_FILE) there, the inputs of `animate_command`. Returns the number
  of frames and the reference driving frame."""
  inputs = animation_inputs(config)
  source, driving = inputs.source, inputs.driving
  generated = animator.animate(source, driving, initial_frame=inputs.reference)
  panels = np.concatenate([np.broadcast_to(source, driving.shape), driving, generated], axis=2)
  fps = float(config.demo.video_fps)
  with Mp4Writer(path, fps) as writer:
    writer.write(figures.to_uint8(panels))
  if sheet_path is not None:
    figures.contact_sheet(source, driving, np.asarray(generated), sheet_path)
  if inputs_dir is not None:
    inputs_dir = pathlib.Path(inputs_dir)
    figures.save_frame(source, inputs_dir / ANIMATION_SOURCE_FILE)
    with Mp4Writer(inputs_dir / ANIMATION_DRIVING_FILE, fps) as writer:
      writer.write(figures.to_uint8(driving))
  _log('Animation: %s (%d frames: source %s | driving %s, yaw range %.0f deg, motion relative '
       'to its frame %d | generated)', path, len(panels), inputs.source_identity,
       inputs.driving_identity, inputs.yaw_range, inputs.reference)
  return len(panels), inputs.reference


def animate_command(workdir: str | os.PathLike, reference: int,
                    out: str = 'animation_cli.mp4') -> str:
  """The `python -m g3fa_jax.animate` command that animates the job's animation inputs with its
  checkpoint as the job did (the driving clip re-encoded, so to within H.264's rounding)."""
  w = pathlib.Path(workdir)
  return shlex.join(['python', '-m', 'g3fa_jax.animate', '--checkpoint', str(w / CHECKPOINT_DIR),
                     '--source', str(w / ANIMATION_SOURCE_FILE),
                     '--driving', str(w / ANIMATION_DRIVING_FILE), '--no-crop',
                     '--best-frame', str(reference), '--side-by-side', '--out', str(w / out)])


def animator_from_state(config: ml_collections.ConfigDict, state: Any) -> Animator:
  """An Animator of a training state's keypoint detector and generator (copied to the host, so
  that the trainer may donate the state's buffers afterwards)."""
  host = jax.device_get({name: {'params': state.params[name], **state.collections[name]}
                         for name in ('kp_detector', 'generator')})
  return Animator(config, host['kp_detector'], host['generator'])


class LearningCurve:
  """Held-out L1 (and how the keypoints follow the head pose) at step 0 and at every checkpoint,
  kept in WORKDIR/learning_curve.json (a resumed run keeps the points it had) and drawn with the
  no-motion baseline as WORKDIR/learning_curve.png."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | os.PathLike):
    self.config = config
    self.path = pathlib.Path(workdir) / CURVE_FILE
    self.plot_path = pathlib.Path(workdir) / CURVE_PLOT_FILE
    saved = json.loads(self.path.read_text()) if self.path.exists() else {}
    self.points: dict[int, float] = {int(k): v for k, v in saved.get('heldout_l1', {}).items()}
    self.correlations: dict[int, dict[str, float]] = {
        int(k): v for k, v in saved.get('keypoint_pose_correlation', {}).items()}
    self.true_motion: dict[int, dict[str, float]] = {
        int(k): v for k, v in saved.get('true_motion', {}).items()}
    self.decoder: dict[int, dict[str, float]] = {
        int(k): v for k, v in saved.get('decoder', {}).items()}
    self.baseline: float | None = saved.get('source_copy_heldout_l1')
    self._score: true_motion.TrueMotionScore | None = None

  def evaluate(self, step: int, animator) -> float:
    """Measures `animator` (the networks at `step`), records and draws the point; returns L1."""
    if self._score is None:
      self._score = true_motion.heldout_score(self.config,
                                              motion_warmup.dense_motion_size(self.config))
    blends = []  # per batch: (mean decoder weight 1 - blend mask, warped source's L1, pairs)

    def prediction_and_motion(source: np.ndarray, driving: np.ndarray):
      out = animator.reconstruct(source, driving)
      if 'blend_mask' in out:
        blends.append((float(1 - out['blend_mask'].mean()),
                       float(np.abs(out['deformed'] - driving).mean()), len(driving)))
      return (out['prediction'], out['deformation'], out['kp_source']['value'],
              out['kp_driving']['value'])

    truth, l1 = _score_with_l1(self._score, prediction_and_motion)
    if blends:
      self.decoder[int(step)] = decoder_figures(blends)
    self.true_motion[int(step)] = {
        **truth,
        'keypoint_shift_gain': self._score.shift_gain(lambda f: animator.keypoints(f)['value'])}
    self.points[int(step)] = l1
    self.correlations[int(step)] = keypoint_pose_correlation(animator, self.config)
    if self.baseline is None:
      self.baseline = source_copy_l1(self.config)
    content = {'heldout_l1': {str(k): v for k, v in sorted(self.points.items())},
               'source_copy_heldout_l1': self.baseline,
               'keypoint_pose_correlation': {str(k): v
                                             for k, v in sorted(self.correlations.items())},
               'true_motion': {str(k): v for k, v in sorted(self.true_motion.items())},
               'decoder': {str(k): v for k, v in sorted(self.decoder.items())}}
    shards.write_json_atomic(self.path, content)
    steps = sorted(self.points)
    figures.learning_curve(steps, [self.points[k] for k in steps], self.baseline, self.plot_path)
    correlation, truth = self.correlations[int(step)], self.true_motion[int(step)]
    _log('Held-out reconstruction L1 at step %d: %.4f (no-motion baseline %.4f: %.2fx); '
         'keypoints vs head pose: r(yaw, x) = %.2f, r(pitch, y) = %.2f; against the true '
         'motion: dense gain %.2f, keypoint gain %.2f (on a 2D shift of the frame %.2f), '
         'keypoint spread %.1f px', step, l1, self.baseline, l1 / self.baseline,
         correlation['yaw_x'], correlation['pitch_y'], truth['gain'], truth['keypoint_gain'],
         truth['keypoint_shift_gain'], truth['keypoint_spread_px'])
    if int(step) in self.decoder:
      decoder = self.decoder[int(step)]
      _log('The decoder makes %.1f%% of the prediction (the rest is the warped source, whose '
           'held-out L1 alone is %.4f)', 100 * decoder['decoder_share'],
           decoder['warped_source_heldout_l1'])
    return l1

  def on_checkpoint(self, step: int, state: Any) -> None:
    """The trainer's hook: evaluates the state's networks on the held-out clips."""
    self.evaluate(step, animator_from_state(self.config, state))


# ------------------------------------------------------------------------------------ the job


def prepare(config: ml_collections.ConfigDict, workdir: str | os.PathLike
            ) -> ml_collections.ConfigDict:
  """Makes the data, the inverse renderer and the random VGG19 weights, measures the untrained
  model's held-out L1 (once, before training), and returns the config pointing to them."""
  config = resolve_paths(config, workdir)
  prepare_data(config)
  prepare_inverse_renderer(config)
  prepare_vgg19(config)
  start_file = pathlib.Path(workdir) / START_EVAL_FILE
  if not start_file.exists():
    l1 = LearningCurve(config, workdir).evaluate(0, untrained_animator(config))
    shards.write_json_atomic(start_file, {'step': 0, 'heldout_l1': l1})
  return config


def train_motion(motion: motion_warmup.MotionTrainer, config: ml_collections.ConfigDict,
                 steps: int, every: int,
                 next_batch: Optional[Callable[[], tuple[Any, Any, Any, Any]]] = None, *,
                 stop_below: float = 0., min_steps: int = 0) -> Iterator[str]:
  """Trains `motion` for up to `steps` steps on `next_batch()` -> (source, driving, true motion
  or None, (source landmarks, driving landmarks) or None) (default: the training split's pairs,
  with their landmarks when `motion.landmarks` is not 0); yields a progress line every `every`
  steps: the warped-source L1 (train, its ratio to copying the source on the same pairs,
  held-out against copying) and the mask's weight on zero motion, both with the step's
  zero-motion offset (what training sees). With `stop_below` > 0 it stops early, after at
  least `min_steps`, at the first report whose train ratio is below `stop_below` (the mask has
  left zero motion: the held-out pairs are only reported, never used to decide)."""
  if next_batch is None:
    with_landmarks = bool(motion.landmarks)
    train_input = input_pipeline.make_train_input(config, int(config.batch_size),
                                                  with_landmarks=with_landmarks)
    bad_records = input_pipeline.BadRecordMonitor(max_fraction=1.0)

    def next_batch():
      batch = bad_records.take(dict(next(train_input.iterator)))
      landmarks = ((batch['source_landmarks'], batch['driving_landmarks']) if with_landmarks
                   else None)
      return batch['source'], batch['driving'], None, landmarks
  baseline = source_copy_l1(config)
  score = true_motion.heldout_score(config, motion.motion_size)
  train_score = true_motion.heldout_score(config, motion.motion_size, split='train', max_clips=12)
  start, history, copied = time.time(), [], []
  for i in range(steps):
    source, driving, truth, landmarks = next_batch()
    history.append(motion.step(source, driving, i, truth, landmarks))
    copied.append(float(np.mean(np.abs(np.asarray(source) - np.asarray(driving)))))
    if (i + 1) % every == 0 or i + 1 == steps:
      truth, heldout = _score_with_l1(score, lambda a, b, i=i: motion.warped_and_motion(a, b, i))
      keypoints_only = _heldout_mean_l1(motion.keypoints_warped, config, 8)
      train_truth = train_score(lambda a, b, i=i: motion.warped_and_motion(a, b, i)[1:])
      train_l1 = float(np.mean(jax.device_get(history)))
      train_ratio = train_l1 / max(float(np.mean(copied)), 1e-12)
      done = stop_below > 0 and i + 1 >= min_steps and train_ratio < stop_below
      yield (f'step {i + 1}/{steps} ({time.time() - start:.0f} s): warped-source L1 train '
             f'{train_l1:.4f} ({train_ratio:.2f}x copying), held-out {heldout:.4f} '
             f'({heldout / baseline:.2f}x copying; by the keypoints alone '
             f'{keypoints_only / baseline:.2f}x); mask weight on zero motion '
             f'{motion.zero_motion_weight(source, driving, i):.3f}; against the true motion: '
             f'gain {truth["gain"]:.2f}, endpoint error {truth["endpoint_px"]:.2f} px '
             f'(no motion {truth["identity_endpoint_px"]:.2f}); keypoints gain '
             f'{truth["keypoint_gain"]:.2f} (on a 2D shift of the frame '
             f'{score.shift_gain(motion.keypoints):.2f}), error '
             f'{truth["keypoint_endpoint_px"]:.2f} px '
             f'(no motion {truth["keypoint_identity_endpoint_px"]:.2f}), spread '
             f'{truth["keypoint_spread_px"]:.1f} px; on training clips: '
             f'gain {train_truth["gain"]:.2f}, keypoints {train_truth["keypoint_gain"]:.2f}'
             + (f'; below {stop_below:.2f}x on the training pairs: done' if done else ''))
      if done:
        return
      history, copied = [], []


def prepare_motion(config: ml_collections.ConfigDict, workdir: str | os.PathLike
                   ) -> Optional[dict[str, Any]]:
  """The motion warm-up (`config.demo.motion_warmup_steps` > 0, at most that many steps): the
  keypoint detector and dense motion network trained alone on the warped source
  (`motion_warmup.MotionTrainer`) with the local motion loss (`demo.motion_warmup_local_motion`),
  the zero-motion channel withheld for the first `demo.motion_warmup_zero_motion_steps`, stopped
  early once the warped source beats copying on the training pairs (`demo.motion_warmup_stop_below`,
  after `demo.motion_warmup_min_steps`); cached in WORKDIR/motion_warmup.msgpack. Returns their
  variables (None without a warm-up)."""
  steps = int(config.demo.get('motion_warmup_steps', 0))
  if steps <= 0:
    return None
  path = pathlib.Path(workdir) / MOTION_WARMUP_FILE
  if path.exists():
    _log('Motion warm-up: reusing %s', path)
    return serialization.msgpack_restore(path.read_bytes())
  held = int(config.demo.motion_warmup_zero_motion_steps)
  _log('Motion warm-up: keypoint detector + dense motion alone for up to %d steps, the '
       'zero-motion channel withheld for the first %d', steps, held)
  motion = motion_warmup.MotionTrainer(
      config, learning_rate=float(config.train.lr_kp_detector), zero_motion_warmup=held,
      equivariance=float(config.train.loss_weights.equivariance_value),
      local_motion=float(config.demo.get('motion_warmup_local_motion', 0.)),
      keypoint_separation=float(config.demo.get('motion_warmup_keypoint_separation', 0.)),
      landmarks=float(config.demo.get('motion_warmup_landmarks', 0.)),
      mask_teacher=float(config.demo.get('motion_warmup_mask_teacher', 0.)), seed=int(config.seed))
  # The true-motion terms need pairs with their true motion, not the input pipeline's.
  next_batch = truth_pairs.sampler(config, motion.motion_size) if motion.needs_truth else None
  lines = train_motion(motion, config, steps, int(config.demo.get('motion_warmup_every', 250)),
                       next_batch,
                       stop_below=float(config.demo.get('motion_warmup_stop_below', 0.)),
                       min_steps=int(config.demo.get('motion_warmup_min_steps', 0)))
  for line in lines:
    _log('Motion warm-up %s', line)
  variables = motion.variables()
  shards.write_bytes_atomic(path, serialization.msgpack_serialize(variables))
  return variables


def reconstruction_clip(yaws: Sequence[np.ndarray | None], frontal_degrees: float = 20.
                        ) -> int:
  """The held-out clip `write_reconstruction` shows: of the clips whose first frame (the source)
  is within `frontal_degrees` of frontal (of all, if none is), the one whose yaw (degrees, per
  frame) moves furthest from its first frame's, so that the picture has a turn to follow; 0
  without yaws."""
  known = [i for i, y in enumerate(yaws) if y is not None and len(y)]
  if not known:
    return 0
  frontal = [i for i in known if abs(float(yaws[i][0])) <= frontal_degrees] or known
  return max(frontal, key=lambda i: float(np.max(np.abs(np.asarray(yaws[i]) - yaws[i][0]))))


def write_reconstruction(animator, config: ml_collections.ConfigDict,
                         sheet_path: str | os.PathLike, frames: int = 8) -> int:
  """What the held-out L1 measures, as a picture: a held-out clip's first frame driven by
  `frames` frames of the same clip (its own keypoints, absolute motion), the clip chosen by
  `reconstruction_clip`; writes a contact sheet (source, driving row, generated row and, for the
  synthetic heads, a third row: the source warped by the head's TRUE motion on the dense motion's
  grid, what a warp that follows the head fully would show). Returns the clip's index."""
  records, poses = _test_records_and_poses(config)
  chosen = reconstruction_clip(_yaws(poses))
  record = records[chosen]
  idx = np.unique(np.linspace(1, record['num_frames'] - 1, frames).round().astype(int))
  clip = _decode_frames(record, [0] + list(idx))
  source = np.ascontiguousarray(np.broadcast_to(clip[:1], clip[1:].shape))
  generated = np.asarray(animator.reconstruct(source, clip[1:])['prediction'])
  extra = []
  if 'synthetic' in record:
    extra.append(true_motion.truly_warped(record, list(idx), source,
                                            motion_warmup.dense_motion_size(config)))
  figures.contact_sheet(clip[0], clip[1:], generated, sheet_path, extra_rows=extra)
  return chosen


def write_motion_figure(animator, config: ml_collections.ConfigDict,
                        path: str | os.PathLike, clips: int = 3) -> None:
  """The keypoints' motion against the true one, as a picture (`figures.motion_arrows`): the
  last held-out pair of each of the first `clips` test clips, source = the clip's first frame."""
  size = int(config.image_size)
  last_pairs = ((record, idx[-1:], source[-1:], driving[-1:]) for record, idx, source, driving
                in heldout_batches(config, 1 << 30, max_clips=clips))  # One batch per clip.
  score = true_motion.TrueMotionScore(last_pairs, size, size)
  frames, keypoints, learnt, true = [], [], [], []
  for source, driving, truth, _ in score.pairs:
    kp_source = np.asarray(animator.keypoints(source)['value'])[0]
    kp_driving = np.asarray(animator.keypoints(driving)['value'])[0]
    frames.append(driving[0])
    keypoints.append(kp_driving)
    learnt.append(kp_source - kp_driving)
    true.append(true_motion.sample_field(truth[0], kp_driving))
  figures.motion_arrows(np.stack(frames), np.stack(keypoints), np.stack(learnt), np.stack(true),
                        path)


def finish(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict[str, Any]:
  """Held-out L1 of the trained checkpoint against step 0 and the no-motion baseline into
  WORKDIR/eval.json; the animation (mp4 and contact sheet), a held-out clip reconstructed from its
  first frame beside the true motion's warp (WORKDIR/reconstruction.png), the keypoints' motion
  against the true one (WORKDIR/motion.png) and the learning curve."""
  config = resolve_paths(config, workdir)
  workdir = pathlib.Path(workdir)
  animator = Animator.from_checkpoint(workdir / CHECKPOINT_DIR)
  _, step = ckpt.read_config(workdir / CHECKPOINT_DIR)
  start = json.loads((workdir / START_EVAL_FILE).read_text())
  curve = LearningCurve(config, workdir)
  end_l1 = curve.points.get(step)
  if end_l1 is None:
    end_l1 = curve.evaluate(step, animator)
  frames, reference = write_animation(animator, config, workdir / VIDEO_FILE,
                                      workdir / SHEET_FILE, inputs_dir=workdir)
  reconstruction_clip_index = write_reconstruction(animator, config, workdir / RECONSTRUCTION_FILE)
  write_motion_figure(animator, config, workdir / MOTION_FILE)
  copy_l1 = curve.baseline
  result = {'start': start, 'end': {'step': step, 'heldout_l1': end_l1},
            'relative_reduction': 1 - end_l1 / start['heldout_l1'],
            'source_copy_heldout_l1': copy_l1,
            'ratio_to_source_copy': end_l1 / copy_l1,
            'beats_source_copy': bool(end_l1 <= BEAT_MARGIN * copy_l1),
            'keypoint_pose_correlation': curve.correlations.get(step),
            'true_motion': curve.true_motion.get(step),
            'decoder': curve.decoder.get(step),
            'test_clips': len(_split_source(config, 'test')),
            'learning_curve': str(workdir / CURVE_PLOT_FILE),
            'video': str(workdir / VIDEO_FILE), 'contact_sheet': str(workdir / SHEET_FILE),
            'reconstruction_sheet': str(workdir / RECONSTRUCTION_FILE),
            'reconstruction_clip': reconstruction_clip_index,
            'motion_sheet': str(workdir / MOTION_FILE),
            'video_frames': frames,
            'animation_reference_frame': reference,
            'animate_command': animate_command(workdir, reference)}
  shards.write_json_atomic(workdir / EVAL_FILE, result)
  _log('Held-out reconstruction L1: %.4f at step 0 -> %.4f at step %d; the source frame itself '
       'as the prediction (no motion): %.4f, so the model is at %.2fx the no-motion baseline; %s',
       start['heldout_l1'], end_l1, step, copy_l1, end_l1 / copy_l1, workdir / EVAL_FILE)
  _log('The same animation with the command-line animator: %s', result['animate_command'])
  return result


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
        writer: Optional[Any] = None) -> dict[str, Any]:
  """The whole job: prepare, train (resumable, a held-out L1 at each checkpoint), finish.
  Returns eval.json's content."""
  started = time.time()
  config = prepare(config, workdir)
  motion = prepare_motion(config, workdir)
  start = time.time()
  trainer.train(config, str(workdir), writer=writer,
                on_checkpoint=LearningCurve(config, workdir).on_checkpoint,
                initialise=None if motion is None else (
                    lambda state: motion_warmup.into_state(state, motion)))
  _log('Training done in %.0f s', time.time() - start)
  result = finish(config, workdir)
  _log('The whole job took %.0f s', time.time() - started)
  return result
