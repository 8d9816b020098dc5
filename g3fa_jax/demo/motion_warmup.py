"""The motion alone: G3FA's keypoint detector and dense motion network trained on the warped source.

The warm-up stage of the synthetic job (`config.demo.motion_warmup_steps`) and the motion checks
of `benchmarks/diagnose_motion.py`. The two networks are trained on the L1 between the source
warped by the dense motion and the driving frame, plus FOMM's two equivariance losses, optionally
with the ground-truth motion of the synthetic heads as a teacher (an L1 to the true sampling grid,
and each source keypoint pulled to where the true motion takes its driving keypoint, or the
mask taught which candidate motion each cell should take: `g3fa_jax.losses.mask_teacher`), and
optionally with each keypoint's local warp L1 (`g3fa_jax.losses.local_motion`), which trains the
keypoints whatever the mask does: with it the mask leaves zero motion by itself. With
`zero_motion_warmup` the zero-motion channel of the mask is withheld for the first steps (see
`train.zero_motion_warmup_steps`): without it the mask settles on zero motion within tens of steps
and the keypoints never become useful (docs/synthetic_training.md). The keypoint
separation loss (`keypoint_separation`, g3fa_jax.losses.keypoint_separation) keeps the keypoints
apart. The local motion and separation settings (`train.local_motion_*`,
`train.keypoint_separation_sigma`) are G3FA's; the weights here are relative to the warped
source's L1 (weight 1).

The networks are built exactly as inside the generator, so `variables()` drops into a G3FA train
state (`into_state`) at a 30th of the full step's cost per step.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from g3fa_jax import losses
from g3fa_jax.losses.keypoint_separation import pair_separation
from g3fa_jax.losses.landmark_anchor import pair_landmark_l1
from g3fa_jax.losses.local_motion import LocalMotionSettings, local_motion_l1
from g3fa_jax.losses.mask_teacher import mask_cross_entropy
from g3fa_jax.models import networks
from g3fa_jax.models.dense_motion import DenseMotionNetwork, sparse_motions
from g3fa_jax.models.generator import deform_input
from g3fa_jax.ops.grid_sample import grid_sample
from g3fa_jax.train import step as step_lib

# Where the dense motion network sits in the generator's variables.
DENSE_MOTION = 'dense_motion_network'


def dense_motion_size(config: ml_collections.ConfigDict) -> int:
  """The side of the dense motion network's grid (the frame's side times its scale_factor)."""
  dense_motion = config.model.generator_params.dense_motion_params
  return round(int(config.image_size) * float(dense_motion.scale_factor))


def build_dense_motion(config: ml_collections.ConfigDict) -> DenseMotionNetwork:
  """The dense motion network with the generator's settings (`Generator` builds the same), but
  never with a blurred mask: with `mask_blur_sigma` = 1 the warm-up's mask did not leave zero
  motion within 6000 steps (docs/synthetic_training.md); G3FA's training then blurs it."""
  common, generator = config.model.common_params, config.model.generator_params
  return DenseMotionNetwork(
      num_kp=common.num_kp, num_channels=common.num_channels,
      estimate_occlusion_map=bool(generator.get('estimate_occlusion_map', False)),
      align_corners=bool(generator.get('warp_align_corners', False)),
      **{**dict(generator.dense_motion_params), 'mask_blur_sigma': 0.0})


class MotionTrainer:
  """Adam on the keypoint detector + dense motion network (see the module docstring).

  step(source, driving, step_index, truth=None) -> the batch's warped-source L1; frames (B, S, S,
  3) in [0, 1]; truth (B, g, g, 2) the true sampling grid at the dense motion's resolution g.
  """

  def __init__(self, config: ml_collections.ConfigDict, *, learning_rate: float = 1e-3,
               equivariance: float = 10., zero_motion_warmup: int = 0,
               truth_motion: float = 0., truth_keypoints: float = 0., truth_steps: int = 0,
               local_motion: float = 0.,
               local_motion_settings: Optional[LocalMotionSettings] = None,
               keypoint_separation: float = 0., landmarks: float = 0., mask_teacher: float = 0.,
               seed: int = 0):
    self.config = config
    self.zero_motion_warmup = int(zero_motion_warmup)
    self.truth_steps = int(truth_steps)
    # The terms that need the true motion of each pair (`step`'s truth).
    self.needs_truth = bool(truth_motion or truth_keypoints or mask_teacher)
    self.align = bool(config.model.generator_params.get('warp_align_corners', False))
    self.motion_size = dense_motion_size(config)
    self.kp_detector = networks.build_network('kp_detector', config)
    self.dense_motion = build_dense_motion(config)
    image = jnp.zeros((1, config.image_size, config.image_size, 3))

    def initial_variables():
      kp_variables = networks.init_variables('kp_detector', config, jax.random.PRNGKey(seed + 1))
      kp = self.kp_detector.apply(kp_variables, image, train=False)
      return kp_variables, self.dense_motion.init(jax.random.PRNGKey(seed + 2), image, kp, kp,
                                                  train=False)

    # One program, not op by op (each parameter shape's draw compiled alone); with XLA's usual
    # optimisation, whose values are the op-by-op ones bit for bit (not so `run_once`'s): the
    # warm-up's stopping step is sensitive to its start.
    kp_variables, motion_variables = jax.jit(initial_variables)()
    self.params = {'kp': kp_variables['params'], 'motion': motion_variables['params']}
    self.stats = {'kp': kp_variables.get('batch_stats', {}),
                  'motion': motion_variables.get('batch_stats', {})}
    self.optimizer = optax.adam(learning_rate, b1=0.9)
    self.opt_state = self.optimizer.init(self.params)
    # The config's settings (`train.local_motion_*`) unless given.
    local_settings = local_motion_settings or LocalMotionSettings.from_config(config)
    self.landmarks = float(landmarks)
    weights = (float(equivariance), float(truth_motion), float(truth_keypoints),
               float(local_motion), local_settings, float(keypoint_separation),
               float(config.train.get('keypoint_separation_sigma', 0.1)), self.landmarks,
               float(mask_teacher))
    transform_params = dict(config.train.transform_params)
    self._step = jax.jit(lambda *args: _step(self, weights, transform_params, *args))
    self._warp = jax.jit(lambda p, s, a, b, o: self.warp(p, s, a, b, False, o))
    self._keypoints = jax.jit(lambda p, s, x: self.kp_detector.apply(
        {'params': p, 'batch_stats': s}, x, train=False)['value'])

  def offset(self, step_index: int) -> jax.Array:
    """The zero-motion logit offset of step `step_index` (0-based)."""
    offset = step_lib.zero_motion_logit_offset(jnp.int32(step_index), self.zero_motion_warmup)
    return jnp.float32(0.) if offset is None else offset

  def warp(self, params, stats, source, driving, train: bool, offset=None):
    """(warped source, kp_source, kp_driving, dense motion outputs, updated stats)."""
    kp_source, s = self.kp_detector.apply({'params': params['kp'], 'batch_stats': stats['kp']},
                                          source, train=train, mutable=['batch_stats'])
    kp_driving, s = self.kp_detector.apply({'params': params['kp'], **s}, driving, train=train,
                                           mutable=['batch_stats'])
    out, m = self.dense_motion.apply(
        {'params': params['motion'], 'batch_stats': stats['motion']}, source, kp_driving,
        kp_source, train=train, zero_motion_logit_offset=offset, mutable=['batch_stats'])
    warped = deform_input(source, out['deformation'], self.align)
    return warped, kp_source, kp_driving, out, {'kp': s['batch_stats'],
                                                'motion': m['batch_stats']}

  def step(self, source: np.ndarray, driving: np.ndarray, step_index: int,
           truth: Optional[np.ndarray] = None,
           landmarks: Optional[tuple[np.ndarray, np.ndarray]] = None) -> jax.Array:
    """One Adam step; `landmarks` (source's, driving's) (B, L, 2) in [-1, 1], needed when the
    trainer's landmark weight is not 0 (`g3fa_jax.synthetic.landmarks`)."""
    if truth is None:
      if self.needs_truth:
        raise ValueError('MotionTrainer.step: a true-motion term (truth_motion, '
                         'truth_keypoints or mask_teacher) is on but no true motion was given '
                         '(synthetic clips only: g3fa_jax.demo.truth_pairs)')
      # Unused by the loss (its weights are 0).
      truth = np.zeros((source.shape[0], self.motion_size, self.motion_size, 2), np.float32)
    if landmarks is None:
      if self.landmarks:
        raise ValueError('MotionTrainer.step: the landmark weight is not 0 but no landmarks '
                         'were given (synthetic clips only: demo.motion_warmup_landmarks)')
      landmarks = (np.zeros((source.shape[0], 1, 2), np.float32),) * 2
    truth_on = jnp.float32(self.truth_steps == 0 or step_index < self.truth_steps)
    rng = jax.random.PRNGKey(step_index)
    self.params, self.stats, self.opt_state, warp_l1 = self._step(
        self.params, self.stats, self.opt_state, source, driving, truth, truth_on,
        landmarks, self.offset(step_index), rng)
    return warp_l1

  def warped_and_motion(self, source: np.ndarray, driving: np.ndarray, step_index: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(the source warped to the driving frame (B, S, S, 3), the dense motion's sampling grid
    (B, g, g, 2), source keypoints (B, K, 2), driving keypoints (B, K, 2)), coordinates in
    [-1, 1] (eval mode, the offset of `step_index`)."""
    warped, kp_source, kp_driving, out, _ = self._warp(self.params, self.stats, source, driving,
                                                       self.offset(step_index))
    return (np.asarray(warped), np.asarray(out['deformation']), np.asarray(kp_source['value']),
            np.asarray(kp_driving['value']))

  def keypoints(self, images: np.ndarray) -> np.ndarray:
    """(B, K, 2) keypoints in [-1, 1] of (B, S, S, 3) images (eval mode)."""
    return np.asarray(self._keypoints(self.params['kp'], self.stats['kp'], images))

  def keypoints_warped(self, source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """The source warped by the keypoints' motions alone (the zero-motion channel withheld)."""
    return np.asarray(self._warp(self.params, self.stats, source, driving,
                                 jnp.float32(step_lib.ZERO_MOTION_HELD_LOGIT))[0])

  def zero_motion_weight(self, source: np.ndarray, driving: np.ndarray, step_index: int) -> float:
    """The mask's mean weight on zero motion (1: the warp ignores the keypoints)."""
    return float(jnp.mean(self._warp(self.params, self.stats, source, driving,
                                     self.offset(step_index))[3]['mask'][..., 0]))

  def variables(self) -> dict[str, Any]:
    """{'kp_detector': {'params', 'batch_stats'}, DENSE_MOTION: {'params', 'batch_stats'}}."""
    return jax.device_get({
        'kp_detector': {'params': self.params['kp'], 'batch_stats': self.stats['kp']},
        DENSE_MOTION: {'params': self.params['motion'], 'batch_stats': self.stats['motion']}})


def _step(trainer: MotionTrainer, weights, transform_params, params, stats, opt_state, source,
          driving, truth, truth_on, landmarks, offset, rng):
  (equivariance, truth_motion, truth_keypoints, local_motion, local_settings, separation,
   separation_sigma, landmark_weight, mask_teacher) = weights

  def loss_fn(params):
    warped, kp_source, kp_driving, out, new_stats = trainer.warp(params, stats, source, driving,
                                                                  True, offset)
    warp_l1 = jnp.mean(jnp.abs(warped - driving))
    loss = warp_l1
    if truth_motion:
      loss += truth_on * truth_motion * jnp.mean(jnp.abs(out['deformation'] - truth))
    if mask_teacher:
      candidates = sparse_motions(out['mask'].shape[1:3], kp_driving, kp_source)
      loss += truth_on * mask_teacher * mask_cross_entropy(out['mask'], candidates, truth)
    if truth_keypoints:
      # Where the true motion says the driving keypoints are in the source frame.
      target = grid_sample(truth, kp_driving['value'][:, :, None, :], align_corners=True)[:, :, 0]
      loss += truth_on * truth_keypoints * jnp.mean(jnp.abs(kp_source['value'] - target))
    if local_motion:
      loss += local_motion * local_motion_l1(source, driving, kp_source, kp_driving,
                                             **local_settings.kwargs())
    if separation:
      loss += separation * pair_separation(kp_source, kp_driving, separation_sigma)
    if landmark_weight:
      loss += landmark_weight * pair_landmark_l1(kp_source, kp_driving, *landmarks)
    if equivariance:
      tps = losses.sample_tps(rng, source.shape[0], **transform_params)
      transformed, s = trainer.kp_detector.apply(
          {'params': params['kp'], 'batch_stats': new_stats['kp']},
          losses.transform_frame(tps, driving), train=True, mutable=['batch_stats'])
      new_stats = {**new_stats, 'kp': s['batch_stats']}
      loss += equivariance * (
          losses.equivariance_value_loss(kp_driving['value'], transformed['value'], tps)
          + losses.equivariance_jacobian_loss(kp_driving['jacobian'], transformed['value'],
                                              transformed['jacobian'], tps))
    return loss, (new_stats, warp_l1)

  (_, (stats, warp_l1)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = trainer.optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), stats, opt_state, warp_l1


def into_state(state: Any, variables: dict[str, Any]) -> Any:
  """A fresh G3FA `TrainState` with the keypoint detector and the generator's dense motion
  network replaced by `variables` (from `MotionTrainer.variables`); everything else, the
  optimiser states included, as it was."""
  params = dict(state.params)
  collections = dict(state.collections)
  params['kp_detector'] = variables['kp_detector']['params']
  generator_params = dict(params['generator'])
  generator_params[DENSE_MOTION] = variables[DENSE_MOTION]['params']
  params['generator'] = generator_params
  kp_collections = dict(collections['kp_detector'])
  if variables['kp_detector']['batch_stats']:
    kp_collections['batch_stats'] = variables['kp_detector']['batch_stats']
  collections['kp_detector'] = kp_collections
  generator_collections = dict(collections['generator'])
  if variables[DENSE_MOTION]['batch_stats']:
    stats = dict(generator_collections['batch_stats'])
    stats[DENSE_MOTION] = variables[DENSE_MOTION]['batch_stats']
    generator_collections['batch_stats'] = stats
  collections['generator'] = generator_collections
  return state.replace(params=params, collections=collections)
