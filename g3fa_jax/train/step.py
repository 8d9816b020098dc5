"""The training step of G3FA as a pure function of (state, batch, frozen weights), for `jax.jit`.

One step is the official loop body (`train.py`, `modules/model.py`):
1. Generator phase: keypoints of source and driving, the generated frame, Unsup3D depth and normal
   of the driving and generated frames, the three discriminators on them, a random TPS warp of the
   driving frame and its keypoints; the generator losses; one Adam step for the generator and one
   for the keypoint detector.
2. Discriminator phase (when `generator_gan` != 0): the three discriminators on the (detached)
   generated and real RGB, depth and normal maps of phase 1; the ensemble LSGAN loss; one Adam
   step per discriminator.

Batch norm runs on batch statistics and updates its running averages at every training-mode call,
in the official order (keypoint detector: source, driving, transformed driving). Each training-mode
discriminator call runs one spectral-norm power iteration, also in the official order (phase 1:
depth and normal on generated, RGB on generated then real; phase 2: RGB generated, real; depth
generated, real; normal generated, real).

The geometry path has two modes (`train.geometry_mode`): 'detached' (official code) computes the
generated frame's depth and normal from `stop_gradient(prediction)`, so the geometry
discriminators only shift the ensemble's target; 'differentiable' (what the paper describes) lets
their gradients flow through the frozen Unsup3D into the generator.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from g3fa_jax import losses as losses_lib
from g3fa_jax.losses.local_motion import LocalMotionSettings
from g3fa_jax.models import inverse_renderer
from g3fa_jax.models import networks
from g3fa_jax.models.vgg19 import Vgg19
from g3fa_jax.train import state as state_lib
from g3fa_jax.train.state import TrainState

GEOMETRY_MODES = ('detached', 'differentiable')
COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Networks:
  """The Flax modules a step applies."""
  kp_detector: nn.Module
  generator: nn.Module
  discriminator: nn.Module
  discriminator2: nn.Module
  discriminator3: nn.Module
  unsup3d: nn.Module
  vgg19: nn.Module

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'Networks':
    built = {name: networks.build_network(name, config)
             for name in networks.G3FA_NETWORKS + ('unsup3d',)}
    # VGG19 stops at the deepest feature map the perceptual loss weighs.
    vgg_outputs = losses_lib.feature_maps_needed(config.train.loss_weights.perceptual) or 1
    return cls(vgg19=Vgg19(num_outputs=vgg_outputs), **built)


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """The config values a step reads, as hashable python values."""
  loss_weights: Mapping[str, Any]
  transform_params: Mapping[str, Any]
  pyramid_scales: tuple[float, ...]
  w_rgb: float
  w_depth: float
  w_normal: float
  geometry_mode: str
  compute_dtype: Any
  unsup3d: Any  # ConfigDict with image_size, min/max/border depth, fov.
  zero_motion_warmup_steps: int = 0
  local_motion: LocalMotionSettings = LocalMotionSettings()
  keypoint_separation_sigma: float = 0.1

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'StepSettings':
    train = config.train
    if train.geometry_mode not in GEOMETRY_MODES:
      raise ValueError(f'config.train.geometry_mode={train.geometry_mode!r}: use one of '
                       f'{GEOMETRY_MODES}')
    if train.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f'config.train.compute_dtype={train.compute_dtype!r}: use one of '
                       f'{tuple(COMPUTE_DTYPES)}')
    weights = train.loss_weights.to_dict()
    weights = {k: tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v)
               for k, v in weights.items()}
    return cls(loss_weights=weights, transform_params=train.transform_params.to_dict(),
               pyramid_scales=tuple(float(s) for s in train.scales),
               w_rgb=float(config.ensemble.w_rgb), w_depth=float(config.ensemble.w_depth),
               w_normal=float(config.ensemble.w_normal), geometry_mode=train.geometry_mode,
               compute_dtype=COMPUTE_DTYPES[train.compute_dtype], unsup3d=config.unsup3d,
               zero_motion_warmup_steps=int(train.get('zero_motion_warmup_steps', 0)),
               local_motion=LocalMotionSettings.from_config(config),
               keypoint_separation_sigma=float(train.get('keypoint_separation_sigma', 0.1)))

  @property
  def uses_gan(self) -> bool:
    return self.loss_weights['generator_gan'] != 0

  @property
  def uses_perceptual(self) -> bool:
    return sum(self.loss_weights.get('perceptual', ())) != 0

  @property
  def uses_equivariance(self) -> bool:
    return (self.loss_weights['equivariance_value'] != 0 or
            self.loss_weights['equivariance_jacobian'] != 0)


# The zero-motion channel's logit offset during `train.zero_motion_warmup_steps`: e^-20 ~ 2e-9,
# so the channel gets no weight whatever the network predicts for it.
ZERO_MOTION_HELD_LOGIT = -20.


def zero_motion_logit_offset(step: jax.Array, warmup_steps: int) -> Optional[jax.Array]:
  """The dense motion's zero-motion logit offset at `step` (steps done): ZERO_MOTION_HELD_LOGIT
  while step < warmup_steps, then 0; None (the official network) without a warm-up."""
  if warmup_steps <= 0:
    return None
  return jnp.where(step < warmup_steps, ZERO_MOTION_HELD_LOGIT, 0.).astype(jnp.float32)


def _cast(tree: Any, dtype) -> Any:
  """Floating leaves to `dtype` (a no-op for float32)."""
  if dtype == jnp.float32:
    return tree
  return jax.tree_util.tree_map(
      lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _to_float32(tree: Any) -> Any:
  return jax.tree_util.tree_map(
      lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _same_dtypes(new: Any, old: Any) -> Any:
  return jax.tree_util.tree_map(lambda n, o: n.astype(o.dtype), new, old)


class _Stateful:
  """Applies one network in training mode while threading its mutable collections.

  Every call reads the collections left by the previous call, in program order, which is what
  makes batch-norm running averages and spectral-norm power iterations follow the official order.
  """

  def __init__(self, module: nn.Module, params: Any, collections: Mapping[str, Any], dtype):
    self.module = module
    self.params = params
    self.collections = dict(collections)
    self.dtype = dtype

  def __call__(self, *args, **kwargs):
    variables = {'params': _cast(self.params, self.dtype), **self.collections}
    # Images in the compute dtype; keypoint dicts stay float32 (they are sampling coordinates).
    args = tuple(a if isinstance(a, Mapping) else _cast(a, self.dtype) for a in args)
    out, updated = self.module.apply(variables, *args, train=True,
                                     mutable=list(self.collections), **kwargs)
    self.collections = _same_dtypes(dict(updated), self.collections)
    return _to_float32(out)


def _interleave(a: jax.Array, b: jax.Array) -> jax.Array:
  """(B, ...), (B, ...) -> (2B, ...) as a0, b0, a1, b1, ... (keeps rows on their device when the
  batch is sharded, unlike a concatenation)."""
  return jnp.stack([a, b], axis=1).reshape((-1,) + a.shape[1:])


def _deinterleave(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  x = x.reshape((-1, 2) + x.shape[1:])
  return x[:, 0], x[:, 1]


def geometry_maps(nets: Networks, settings: StepSettings, unsup3d_variables: Any,
                  real: jax.Array, generated: jax.Array
                  ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Unsup3D depth and normal of real and generated frames in one batched call.

  Returns depth_real (B, H, W, 1), normal_real (B, H, W, 3), depth_generated, normal_generated,
  float32; gradients flow into `generated` unless the caller stopped them.
  """
  dtype = settings.compute_dtype
  images = _cast(_interleave(real, generated), dtype)
  depth, normal = inverse_renderer.unsup3d_depth_and_normal(
      nets.unsup3d.apply, _cast(unsup3d_variables, dtype), images, settings.unsup3d,
      output_size=real.shape[1:3])
  depth_real, depth_generated = _deinterleave(depth.astype(jnp.float32))
  normal_real, normal_generated = _deinterleave(normal.astype(jnp.float32))
  return depth_real, normal_real, depth_generated, normal_generated


def _vgg_features(nets: Networks, vgg_variables: Any, dtype, batch_size: int
                  ) -> Callable[[jax.Array], list]:
  """VGG19 features for the perceptual loss.

  The loss may pass generated and real frames as one batch of 2 * batch_size; the real half then
  runs as its own call under stop_gradient, so that the backward pass only goes through the
  generated half (one call on the concatenation would back-propagate zeros through the real half,
  doubling the VGG backward cost).
  """
  variables = _cast(vgg_variables, dtype)

  def features(x):
    return _to_float32(nets.vgg19.apply(variables, x.astype(dtype)))

  def fn(x):
    if x.shape[0] != 2 * batch_size:
      return features(x)
    generated = features(x[:batch_size])
    real = jax.lax.stop_gradient(features(x[batch_size:]))
    return [jnp.concatenate([g, r], axis=0) for g, r in zip(generated, real)]
  return fn


def generator_phase(nets: Networks, settings: StepSettings, state: TrainState,
                    batch: Mapping[str, jax.Array], frozen: Mapping[str, Any],
                    rng: jax.Array) -> tuple[dict[str, Any], dict[str, Any]]:
  """Gradients of the generator losses w.r.t. the keypoint detector's and generator's params.

  Returns:
    (grads, aux): grads {'kp_detector': ..., 'generator': ...}; aux holds 'losses' (dict of scalars),
    'collections' (every network's updated batch_stats / spectral), 'generated' (generator
    outputs), 'kp_source', 'kp_driving' and, with the GAN on, 'geometry' (depth_real,
    normal_real, depth_generated, normal_generated).
  """
  source, driving = batch['source'], batch['driving']
  dtype = settings.compute_dtype
  weights = settings.loss_weights

  def objective(trained):
    kp_detector = _Stateful(nets.kp_detector, trained['kp_detector'],
                            state.collections['kp_detector'], dtype)
    generator = _Stateful(nets.generator, trained['generator'], state.collections['generator'],
                          dtype)
    discs = {name: _Stateful(getattr(nets, name), jax.lax.stop_gradient(state.params[name]),
                             state.collections[name], dtype)
             for name in state_lib.DISCRIMINATORS}
    aux = {}
    kp_source = kp_detector(source)
    kp_driving = kp_detector(driving)
    generated = generator(source, kp_source, kp_driving, zero_motion_logit_offset=(
        zero_motion_logit_offset(state.step, settings.zero_motion_warmup_steps)))
    prediction = generated['prediction']
    aux.update(generated=generated, kp_source=kp_source, kp_driving=kp_driving)

    loss_inputs = {'driving': driving, 'prediction': prediction,
                   'deformed': generated['deformed']}
    if weights.get('local_motion', 0):
      loss_inputs.update(source=source, kp_source=kp_source, kp_driving=kp_driving,
                         local_motion_settings=settings.local_motion)
    if weights.get('keypoint_separation', 0):
      loss_inputs.update(kp_source=kp_source, kp_driving=kp_driving,
                         separation_sigma=settings.keypoint_separation_sigma)
    if weights.get('landmarks', 0):
      loss_inputs.update(kp_source=kp_source, kp_driving=kp_driving,
                         source_landmarks=batch['source_landmarks'],
                         driving_landmarks=batch['driving_landmarks'])
    if settings.uses_perceptual:
      loss_inputs.update(vgg_features=_vgg_features(nets, frozen['vgg19'], dtype,
                                                     source.shape[0]),
                         pyramid_scales=settings.pyramid_scales)
    if settings.uses_gan:
      geometry_input = prediction
      if settings.geometry_mode == 'detached':
        geometry_input = jax.lax.stop_gradient(prediction)
      geometry = geometry_maps(nets, settings, frozen['unsup3d'], driving, geometry_input)
      _, _, depth_generated, normal_generated = geometry
      aux['geometry'] = geometry
      loss_inputs['depth_generated'] = discs['discriminator2'](depth_generated)
      loss_inputs['normal_generated'] = discs['discriminator3'](normal_generated)
      loss_inputs['rgb_generated'] = discs['discriminator'](prediction)
      loss_inputs['rgb_real'] = discs['discriminator'](driving)
    if settings.uses_equivariance:
      tps = losses_lib.sample_tps(rng, source.shape[0], **settings.transform_params)
      transformed_kp = kp_detector(losses_lib.transform_frame(tps, driving))
      loss_inputs.update(kp_driving=kp_driving, transformed_kp=transformed_kp, tps=tps)

    losses = losses_lib.generator_losses(
        weights, w_rgb=settings.w_rgb, w_depth=settings.w_depth, w_normal=settings.w_normal,
        **loss_inputs)
    aux['losses'] = losses
    aux['collections'] = {
        'kp_detector': kp_detector.collections, 'generator': generator.collections,
        **{name: disc.collections for name, disc in discs.items()}}
    total = sum(losses.values()) if losses else jnp.zeros((), jnp.float32)
    return total, aux

  trained = {name: state.params[name] for name in state_lib.GENERATOR_SIDE}
  (_, aux), grads = jax.value_and_grad(objective, has_aux=True)(trained)
  return grads, aux


def discriminator_phase(nets: Networks, settings: StepSettings, params: Mapping[str, Any],
                        collections: Mapping[str, Any], driving: jax.Array,
                        prediction: jax.Array, geometry) -> tuple[dict[str, Any], dict[str, Any]]:
  """Gradients of the ensemble LSGAN discriminator loss w.r.t. the three discriminators' params.

  Returns (grads by discriminator name, aux with 'losses' and updated 'collections').
  """
  dtype = settings.compute_dtype
  depth_real, normal_real, depth_generated, normal_generated = jax.lax.stop_gradient(geometry)
  prediction = jax.lax.stop_gradient(prediction)

  def objective(disc_params):
    discs = {name: _Stateful(getattr(nets, name), disc_params[name], collections[name], dtype)
             for name in state_lib.DISCRIMINATORS}
    outputs = {
        'rgb_generated': discs['discriminator'](prediction),
        'rgb_real': discs['discriminator'](driving),
        'depth_generated': discs['discriminator2'](depth_generated),
        'depth_real': discs['discriminator2'](depth_real),
        'normal_generated': discs['discriminator3'](normal_generated),
        'normal_real': discs['discriminator3'](normal_real),
    }
    losses = losses_lib.discriminator_losses(
        settings.loss_weights, w_rgb=settings.w_rgb, w_depth=settings.w_depth,
        w_normal=settings.w_normal, **outputs)
    aux = {'losses': losses,
           'collections': {name: disc.collections for name, disc in discs.items()}}
    return sum(losses.values()), aux

  disc_params = {name: params[name] for name in state_lib.DISCRIMINATORS}
  (_, aux), grads = jax.value_and_grad(objective, has_aux=True)(disc_params)
  return grads, aux


def _all_finite(tree: Any) -> jax.Array:
  leaves = jax.tree_util.tree_leaves(tree)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def train_step(state: TrainState, batch: Mapping[str, jax.Array], frozen: Mapping[str, Any], *,
               nets: Networks, settings: StepSettings,
               optimizers: Mapping[str, optax.GradientTransformation]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One G3FA training step.

  Args:
    state: the train state before the step.
    batch: {'source', 'driving'}: (B, H, W, 3) float32 frames in [0, 1] (the global batch).
    frozen: {'unsup3d': variables or None, 'vgg19': variables or None}.
    nets, settings, optimizers: static (see `Networks`, `StepSettings`, `optim.make_optimizers`).

  Returns:
    (new state, metrics): scalar losses by official name ('perceptual', 'gen_gan',
    'feature_matching', 'equivariance_value', 'equivariance_jacobian', 'disc_gan'),
    'generator_loss', 'discriminator_loss', global gradient norms 'grad_norm/<network>', and
    'finite' (1.0, or 0.0 when a loss or gradient was not finite; the training loop then stops
    without saving the state).
  """
  rng = state_lib.step_rng(state)
  gen_grads, aux = generator_phase(nets, settings, state, batch, frozen, rng)
  params = dict(state.params)
  opt_state = dict(state.opt_state)
  for name in state_lib.GENERATOR_SIDE:
    params[name], opt_state[name] = state_lib.apply_updates(
        params[name], gen_grads[name], opt_state[name], optimizers[name])
  collections = dict(aux['collections'])
  losses = dict(aux['losses'])
  grads = dict(gen_grads)

  if settings.uses_gan:
    disc_grads, disc_aux = discriminator_phase(
        nets, settings, state.params, collections, batch['driving'],
        aux['generated']['prediction'], aux['geometry'])
    for name in state_lib.DISCRIMINATORS:
      params[name], opt_state[name] = state_lib.apply_updates(
          params[name], disc_grads[name], opt_state[name], optimizers[name])
    collections.update(disc_aux['collections'])
    losses.update(disc_aux['losses'])
    grads.update(disc_grads)

  metrics = dict(losses)
  metrics['generator_loss'] = sum(aux['losses'].values())
  if 'disc_gan' in losses:
    metrics['discriminator_loss'] = losses['disc_gan']
  for name, g in grads.items():
    metrics[f'grad_norm/{name}'] = optax.tree.norm(g)
  metrics['finite'] = _all_finite(metrics).astype(jnp.float32)
  new_state = state.replace(step=state.step + 1, params=params, collections=collections,
                            opt_state=opt_state)
  return new_state, metrics


def generator_gradients(state: TrainState, batch: Mapping[str, jax.Array],
                        frozen: Mapping[str, Any], *, nets: Networks, settings: StepSettings
                        ) -> tuple[Any, dict[str, jax.Array]]:
  """The generator phase alone: ({'kp_detector': grads, 'generator': grads}, losses)."""
  grads, aux = generator_phase(nets, settings, state, batch, frozen, state_lib.step_rng(state))
  return grads, aux['losses']


def summary_outputs(state: TrainState, batch: Mapping[str, jax.Array],
                    frozen: Mapping[str, Any], *, nets: Networks, settings: StepSettings
                    ) -> dict[str, jax.Array]:
  """What the image summaries show, from a training-mode forward that changes nothing.

  Returns NHWC float32 arrays in [0, 1] at the frame size: 'source', 'driving', 'generated',
  'deformed', 'occlusion' (3 equal channels), 'depth' (generated frame, min..max depth mapped to
  0..1, 3 channels) and 'normal' (generated frame, (n + 1) / 2).
  """
  source, driving = batch['source'], batch['driving']
  dtype = settings.compute_dtype
  kp_detector = _Stateful(nets.kp_detector, state.params['kp_detector'],
                          state.collections['kp_detector'], dtype)
  generator = _Stateful(nets.generator, state.params['generator'],
                        state.collections['generator'], dtype)
  generated = generator(source, kp_detector(source), kp_detector(driving),
                        zero_motion_logit_offset=zero_motion_logit_offset(
                            state.step, settings.zero_motion_warmup_steps))
  size = source.shape[1:3]
  out = {'source': source, 'driving': driving,
         'generated': generated['prediction'], 'deformed': generated['deformed']}
  if 'occlusion_map' in generated:
    occlusion = jax.image.resize(generated['occlusion_map'],
                                 (source.shape[0],) + size + (1,), 'bilinear')
    out['occlusion'] = jnp.repeat(occlusion, 3, axis=-1)
  if frozen.get('unsup3d') is not None:
    _, _, depth, normal = geometry_maps(nets, settings, frozen['unsup3d'], driving,
                                        generated['prediction'])
    cfg = settings.unsup3d
    depth = (depth - cfg.min_depth) / (cfg.max_depth - cfg.min_depth)
    out['depth'] = jnp.repeat(depth, 3, axis=-1)
    out['normal'] = (normal + 1) / 2
  return {k: jnp.clip(v.astype(jnp.float32), 0, 1) for k, v in out.items()}


def make_train_step(config: ml_collections.ConfigDict,
                    optimizers: Mapping[str, optax.GradientTransformation],
                    nets: Optional[Networks] = None) -> Callable[..., Any]:
  """`train_step` with its static arguments bound: (state, batch, frozen) -> (state, metrics)."""
  nets = Networks.from_config(config) if nets is None else nets
  settings = StepSettings.from_config(config)

  def step(state, batch, frozen):
    return train_step(state, batch, frozen, nets=nets, settings=settings, optimizers=optimizers)
  return step
