"""`Animator`: a keypoint detector and generator restored from a checkpoint, jit-compiled."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.inference import motion
from g3fa_jax.inference.images import as_image_batch
from g3fa_jax.models import networks


class Animator:
  """Drives source faces with driving frames' keypoints.

  Images are float32 NHWC in [0, 1]; keypoints are (x, y) in [-1, 1].
  """

  def __init__(self, config: ml_collections.ConfigDict, kp_detector_variables: Any,
               generator_variables: Any, frames_per_pass: int | None = None):
    """`frames_per_pass`: driving frames computed together within one device call of
    `batch_size` frames (a divisor of it is used); None: 1 on a CPU, where a batch's activations
    (8 frames of 256x256x64 floats: 134 MB per map) overflow the caches and each frame costs more
    than alone, the whole batch on an accelerator; 0: the whole batch."""
    if frames_per_pass is not None and frames_per_pass < 0:
      raise ValueError(f'frames_per_pass must be >= 0 (0: the whole batch) or None, got '
                       f'{frames_per_pass}')
    if frames_per_pass is None:
      frames_per_pass = 1 if jax.default_backend() == 'cpu' else 0
    self.frames_per_pass = frames_per_pass  # 0: the whole batch at once.
    self.config = config
    self.kp_detector = networks.build_network('kp_detector', config)
    self.generator = networks.build_network('generator', config)
    self.kp_detector_variables = jax.device_put(kp_detector_variables)
    self.generator_variables = jax.device_put(generator_variables)

  @classmethod
  def from_checkpoint(cls, directory: str | os.PathLike, step: int | None = None,
                      frames_per_pass: int | None = None) -> 'Animator':
    """Restores the keypoint detector and generator (and their config) from an orbax checkpoint.

    `directory` is a checkpoint root (the latest step is used unless `step` is given) or one step
    folder, as written by `python -m g3fa_jax.convert official` or by training;
    `frames_per_pass` as in the constructor.
    """
    variables, meta = ckpt.restore_networks(directory, ('kp_detector', 'generator'),
                                            networks.variables_template, step=step)
    return cls(ml_collections.ConfigDict(meta['config']), variables['kp_detector'],
               variables['generator'], frames_per_pass=frames_per_pass)

  def keypoints(self, images) -> dict[str, jax.Array]:
    """images (B, H, W, 3) in [0, 1] -> {'value': (B, K, 2), 'jacobian': (B, K, 2, 2)}."""
    return _detect_keypoints(self.kp_detector, self.kp_detector_variables,
                             jnp.asarray(as_image_batch(images, 'images')))

  def generate(self, source, kp_source: dict, kp_driving: dict) -> dict[str, jax.Array]:
    """The generator's outputs for sources driven from `kp_source` to `kp_driving` (batched)."""
    return _generate(self.generator, self.generator_variables,
                     jnp.asarray(as_image_batch(source, 'source')), kp_source, kp_driving)

  def reconstruct(self, source, driving) -> dict[str, np.ndarray]:
    """Each source driven by its driving frame's keypoints (absolute motion).

    Args:
      source: (B, H, W, 3) in [0, 1].
      driving: (B, H, W, 3) in [0, 1], same shape.

    Returns:
      NHWC numpy arrays: `prediction` (B, H, W, 3), `deformed` (B, H, W, 3), `occlusion_map`
      (B, h, w, 1), `mask` (B, h, w, K+1), `sparse_deformed` (B, K+1, h, w, 3), and the keypoints
      `kp_source`, `kp_driving`.
    """
    source = as_image_batch(source, 'source')
    driving = as_image_batch(driving, 'driving')
    if source.shape != driving.shape:
      raise ValueError(f'source {source.shape} and driving {driving.shape} must have one shape')
    kp_source = self.keypoints(source)
    kp_driving = self.keypoints(driving)
    out = dict(self.generate(source, kp_source, kp_driving))
    out['kp_source'], out['kp_driving'] = kp_source, kp_driving
    return jax.tree_util.tree_map(np.asarray, out)

  def animate(self, source, driving_frames, relative: bool = True,
              adapt_movement_scale: bool = True, *, initial_frame: int = 0,
              batch_size: int = 8) -> np.ndarray:
    """The source face moved like the driving video (First Order Motion Model's animation).

    Args:
      source: (H, W, 3) or (1, H, W, 3) source image in [0, 1].
      driving_frames: (T, H, W, 3) driving frames of the source's size, float in [0, 1] (uint8 in
        [0, 255] is accepted too); any sequence of frames that supports len() and slicing.
      relative: transfer the motion relative to the driving frame `initial_frame` (FOMM's
        `use_relative_movement` and `use_relative_jacobian`); False drives the source with the
        driving frames' absolute keypoints.
      adapt_movement_scale: scale the relative motion by sqrt(source / driving keypoint hull
        area) (ignored when not relative).
      initial_frame: the reference driving frame of relative motion (FOMM's demo with
        `--find-best-frame` animates forward and backward from the best frame: the same frames).
      batch_size: driving frames generated per device call.

    Returns:
      (T, H, W, 3) float32 frames in [0, 1].
    """
    batches = list(self.iter_animation(source, driving_frames, relative, adapt_movement_scale,
                                       initial_frame=initial_frame, batch_size=batch_size))
    if not batches:
      return np.zeros((0,) + as_image_batch(source, 'source').shape[1:], np.float32)
    return np.concatenate(batches)

  def iter_animation(self, source, driving_frames, relative: bool = True,
                     adapt_movement_scale: bool = True, *, initial_frame: int = 0,
                     batch_size: int = 8) -> Iterator[np.ndarray]:
    """`animate`, yielding (n <= batch_size, H, W, 3) float32 frames batch by batch, in order.

    Every batch is padded to one shape, so the step compiles once per (model, source size, batch
    size), shared by all Animators of one config.
    """
    num_frames = len(driving_frames)
    if num_frames == 0:
      as_image_batch(source, 'source')
      return
    if not 0 <= initial_frame < num_frames:
      raise ValueError(f'initial_frame {initial_frame} is outside the {num_frames} driving frames')
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    reference = self.reference(source, driving_frames[initial_frame:initial_frame + 1], relative,
                               adapt_movement_scale)
    batch = min(batch_size, num_frames)
    pending = None
    for start in range(0, num_frames, batch):
      frames = driving_frames[start:start + batch]
      count = len(frames)
      if count < batch:  # Pad the last batch to the compiled shape.
        frames = np.concatenate([np.asarray(frames),
                                 np.repeat(np.asarray(frames[-1:]), batch - count, axis=0)])
      prediction = self.drive(reference, frames)
      if pending is not None:  # Dispatched one batch ahead: the device works while we yield.
        yield np.asarray(pending[0])[:pending[1]]
      pending = (prediction, count)
    yield np.asarray(pending[0])[:pending[1]]

  def reference(self, source, reference_frame, relative: bool = True,
                adapt_movement_scale: bool = True) -> 'MotionReference':
    """What `drive` needs: the source and its keypoints, and the reference driving frame's.

    Args:
      source: (H, W, 3) or (1, H, W, 3) source image in [0, 1].
      reference_frame: (H, W, 3) or (1, H, W, 3) driving frame of the source's size (float in
        [0, 1] or uint8): relative motion is measured from it (unused when not `relative`).
      relative: relative motion (FOMM); False drives with the absolute driving keypoints.
      adapt_movement_scale: scale relative motion by sqrt(source / reference keypoint hull area).
    """
    source = as_image_batch(source, 'source')
    if source.shape[0] != 1:
      raise ValueError(f'source: expected one image, got a batch of {source.shape[0]}')
    reference_frame = np.asarray(reference_frame)
    if reference_frame.ndim == 3:
      reference_frame = reference_frame[None]
    kp_source = self.keypoints(source)
    kp_initial = self.keypoints(_driving_batch(reference_frame, source.shape))
    scale = np.float32(1.0)
    if relative and adapt_movement_scale:
      scale = motion.movement_scale(np.asarray(kp_source['value']),
                                    np.asarray(kp_initial['value']))[0]
    source = jnp.asarray(source)
    features = _encode_source(self.generator, self.generator_variables, source)
    return MotionReference(source, features, kp_source, kp_initial, jnp.float32(scale), relative)

  def drive(self, reference: 'MotionReference', driving_frames) -> jax.Array:
    """The source of `reference` moved like each driving frame, in one device call.

    Args:
      reference: from `reference` (the source, and the frame relative motion starts from).
      driving_frames: (n, H, W, 3) frames of the source's size, float in [0, 1] or uint8.

    Returns:
      (n, H, W, 3) float32 frames in [0, 1], on the device (`np.asarray` waits for them). One
      compiled program per (model, frame size, n).
    """
    frames = _driving_batch(driving_frames, reference.source.shape)
    # Passes of gcd(batch, frames_per_pass) frames, which divides the batch; 0: the whole batch.
    per_pass = (len(frames) if self.frames_per_pass == 0
                else math.gcd(len(frames), self.frames_per_pass))
    return _animate_step(
        self.kp_detector, self.generator, self.kp_detector_variables, self.generator_variables,
        reference.source, reference.source_features, reference.kp_source, reference.kp_initial,
        reference.scale, jnp.asarray(frames), relative=reference.relative,
        frames_per_pass=per_pass)


@dataclasses.dataclass(frozen=True)
class MotionReference:
  """A source and the driving frame its motion is measured from (`Animator.reference`).

  Attributes:
    source: (1, H, W, 3) float32 in [0, 1].
    source_features: (1, h, w, F), the generator's encoding of the source, made once here rather
      than once per driving frame.
    kp_source: the source's keypoints, {'value': (1, K, 2), 'jacobian': (1, K, 2, 2)}.
    kp_initial: the reference driving frame's keypoints, same shapes.
    scale: the movement scale (a float32 scalar; 1 without adaptation).
    relative: relative motion; False uses the driving keypoints as they are.
  """
  source: jax.Array
  source_features: jax.Array
  kp_source: dict
  kp_initial: dict
  scale: jax.Array
  relative: bool


# The Animator's device calls (these three and `_animate_step`) are module-level with the
# (hashable) modules as static arguments, so that every Animator of one config shares their
# compiled programs: a training job builds one per checkpoint to evaluate it.


@functools.partial(jax.jit, static_argnames=('kp_detector',))
def _detect_keypoints(kp_detector, variables, images):
  """images (B, H, W, 3) -> the keypoint detector's {'value', 'jacobian'}."""
  return kp_detector.apply(variables, images, train=False)


@functools.partial(jax.jit, static_argnames=('generator',))
def _generate(generator, variables, source, kp_source, kp_driving):
  """The generator's outputs for sources (B, H, W, 3) driven from kp_source to kp_driving."""
  return generator.apply(variables, source, kp_source, kp_driving, train=False)


@functools.partial(jax.jit, static_argnames=('generator',))
def _encode_source(generator, variables, source):
  """The generator's encoded source features (B, h, w, C) of sources (B, H, W, 3)."""
  return generator.apply(variables, source, None, None, train=False,
                         encode_only=True)['source_features']


@functools.partial(jax.jit, static_argnames=('kp_detector', 'generator', 'relative',
                                             'frames_per_pass'))
def _animate_step(kp_detector, generator, kp_variables, generator_variables, source,
                  source_features, kp_source, kp_initial, scale, driving, relative,
                  frames_per_pass):
  """Driving keypoints, motion transfer and generation of one batch of driving frames, computed
  `frames_per_pass` frames at a time (a divisor of the batch) in one device call."""
  args = (kp_detector, generator, kp_variables, generator_variables, source, source_features,
          kp_source, kp_initial, scale)
  num = driving.shape[0]
  if frames_per_pass >= num:
    return _animate_frames(*args, driving, relative)
  passes = driving.reshape((num // frames_per_pass, frames_per_pass) + driving.shape[1:])
  out = jax.lax.map(lambda frames: _animate_frames(*args, frames, relative), passes)
  return out.reshape((num,) + out.shape[2:])


def _animate_frames(kp_detector, generator, kp_variables, generator_variables, source,
                    source_features, kp_source, kp_initial, scale, driving, relative):
  """`_animate_step`'s computation on (n, H, W, 3) driving frames at once."""
  kp_driving = kp_detector.apply(kp_variables, driving, train=False)
  if relative:
    kp_driving = motion.relative_keypoints(kp_source, kp_driving, kp_initial, scale)
  num = driving.shape[0]
  broadcast = lambda x: jnp.broadcast_to(x, (num,) + x.shape[1:])
  out = generator.apply(generator_variables, broadcast(source),
                        jax.tree_util.tree_map(broadcast, kp_source), kp_driving, train=False,
                        source_features=broadcast(source_features))
  return out['prediction']


def _driving_batch(frames: Sequence, source_shape: tuple[int, ...]) -> np.ndarray:
  """Driving frames (n, H, W, 3), uint8 or float in [0, 1], as float32 of the source's size."""
  frames = np.asarray(frames)
  if frames.dtype == np.uint8:
    frames = frames.astype(np.float32) / 255.0
  frames = as_image_batch(frames, 'driving_frames')
  if frames.shape[1:] != tuple(source_shape[1:]):
    raise ValueError(f'driving_frames: frames of shape {frames.shape[1:]} differ from the '
                     f'source {tuple(source_shape[1:])}; resize them to the source size')
  return frames
