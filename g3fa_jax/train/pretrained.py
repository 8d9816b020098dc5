"""The frozen networks of training: Unsup3D (depth and normal maps) and VGG19 (perceptual loss).

Their weights come from orbax checkpoints written by the converters and named in the config
(`config.pretrained.unsup3d`, `config.pretrained.vgg19`). A run that needs one and cannot find it
fails at start with a message saying how to make it. `config.pretrained.use_random_weights=True`
replaces both by seeded random weights, and says so: that is for tests and offline demos only.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.models import networks
from g3fa_jax.models import vgg19
from g3fa_jax.ops import run_once

# The converters' commands (README "Convert official checkpoints").
HOW_TO_MAKE = {
    'unsup3d': ('python -m g3fa_jax.convert unsup3d --checkpoint checkpoint030.pth --out {path}  '
                "(checkpoint030.pth: Unsup3D's released CelebA model)"),
    'vgg19': ('python -m g3fa_jax.convert vgg19 --checkpoint vgg19-dcbb9e9d.pth --out {path}  '
              "(vgg19-dcbb9e9d.pth: torchvision's ImageNet VGG19 weights)"),
}
CONFIG_FIELD = {'unsup3d': 'config.pretrained.unsup3d', 'vgg19': 'config.pretrained.vgg19'}
RANDOM_WEIGHTS_WARNING = (
    'config.pretrained.use_random_weights=True: Unsup3D and VGG19 have RANDOM weights; the depth, '
    'normal and perceptual losses are meaningless (for tests and offline demos only).')


class PretrainedWeightsError(FileNotFoundError):
  """A pretrained checkpoint named in the config is missing or unusable."""


def needed(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """Which frozen networks the config's losses use."""
  weights = config.train.loss_weights
  out = []
  if weights.generator_gan != 0:
    out.append('unsup3d')
  if sum(weights.perceptual) != 0:
    out.append('vgg19')
  return tuple(out)


def random_variables(name: str, config: ml_collections.ConfigDict, rng: jax.Array) -> Any:
  """Seeded random weights of a frozen network ('unsup3d' or 'vgg19')."""
  if name == 'unsup3d':
    return run_once.call_once(functools.partial(networks.init_variables, 'unsup3d', config), rng)
  if name == 'vgg19':
    x = jnp.zeros((1, 32, 32, 3), jnp.float32)
    return run_once.call_once(vgg19.Vgg19().init, rng, x)
  raise ValueError(f'unknown frozen network {name!r}')


def _template(name: str, config: ml_collections.ConfigDict) -> Any:
  return (networks.variables_template('unsup3d', config) if name == 'unsup3d'
          else vgg19.vgg19_template())


def load_variables(name: str, path: str, config: ml_collections.ConfigDict) -> Any:
  """A converted checkpoint's variables of `name`, checked against the run config's network.

  Raises:
    PretrainedWeightsError: `path` is empty, holds no checkpoint or one of another format.
    g3fa_jax.checkpoint.CheckpointMismatchError: the checkpoint holds another network, or one of
      another size than the config's.
  """
  how = HOW_TO_MAKE[name].format(path=path or f'checkpoints/{name}')
  if not path:
    raise PretrainedWeightsError(
        f'{CONFIG_FIELD[name]} is empty but the config needs {name} weights. Make them with: '
        f'{how}; or set --config.pretrained.use_random_weights=True for a test run.')
  try:
    # Checked against the run config's network (not the config stored with the checkpoint).
    variables, _ = ckpt.restore_networks(path, (name,), lambda n, _: _template(n, config),
                                         make_command=how)
  except ckpt.MissingCheckpointError as e:
    raise PretrainedWeightsError(
        f'{CONFIG_FIELD[name]}={path!r}: {e}; or set --config.pretrained.use_random_weights=True '
        'for a test run.') from e
  except ckpt.CheckpointMismatchError:
    raise  # Another network, or another size than the config's: the message names both.
  except ValueError as e:  # Not a checkpoint of this format.
    raise PretrainedWeightsError(f'{CONFIG_FIELD[name]}={path!r}: {e}. Make it with: {how}') from e
  return variables[name]


def frozen_variables(config: ml_collections.ConfigDict,
                     rng: Optional[jax.Array] = None) -> dict[str, Any]:
  """{'unsup3d': variables or None, 'vgg19': variables or None} for the config's losses.

  Raises:
    PretrainedWeightsError: a needed checkpoint is not named, missing or of another network.
  """
  pretrained = config.pretrained
  names = needed(config)
  out = {'unsup3d': None, 'vgg19': None}
  if pretrained.use_random_weights:
    if names:
      logging.warning(RANDOM_WEIGHTS_WARNING)
    rng = jax.random.PRNGKey(config.seed + 1) if rng is None else rng
    for i, name in enumerate(names):
      out[name] = random_variables(name, config, jax.random.fold_in(rng, i))
    return out
  errors = []
  for name in names:
    try:
      out[name] = load_variables(name, getattr(pretrained, name), config)
    except PretrainedWeightsError as e:
      errors.append(str(e))
  if errors:  # All of them at once, so that one start tells everything that is missing.
    raise PretrainedWeightsError('\n'.join(errors))
  return out
