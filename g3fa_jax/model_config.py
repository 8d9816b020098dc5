"""Model hyper-parameters in the official G3FA schema (the `model_params` of `vox-256.yaml`).

Field names are the official ones, so an official YAML config converts one-to-one and a checkpoint
trained with the official code maps onto modules built from this config.
"""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections


def vox256_model_config() -> ml_collections.ConfigDict:
  """The official `config/vox-256.yaml` model: 15 keypoints, 256x256 frames."""
  return ml_collections.ConfigDict({
      'common_params': {'num_kp': 15, 'num_channels': 3, 'estimate_jacobian': True},
      'kp_detector_params': {
          'temperature': 0.1, 'block_expansion': 32, 'max_features': 1024,
          'scale_factor': 0.25, 'num_blocks': 5,
      },
      'generator_params': {
          'block_expansion': 64, 'max_features': 512, 'num_down_blocks': 2,
          'num_bottleneck_blocks': 6, 'estimate_occlusion_map': True,
          # g3fa-jax option, fixed at 128 in the official SPADE decoder.
          'decoder_hidden_channels': 128,
          # g3fa-jax option: warps with grid_sample's align_corners=True, under which zero motion
          # is an exact identity (the official code, on PyTorch >= 1.3, uses False).
          'warp_align_corners': False,
          # g3fa-jax option: the prediction blends the warped source image with the decoded one by
          # a predicted mask (vid2vid's way); the official generator decodes every pixel.
          'blend_warped_source': False,
          'dense_motion_params': {
              'block_expansion': 64, 'max_features': 1024, 'num_blocks': 5, 'scale_factor': 0.25,
              # g3fa-jax option: the motion mask blurred by a Gaussian of this many cells (0: no).
              'mask_blur_sigma': 0.0,
          },
          'render_params': {
              'simpled_channel_rgb': 128, 'simpled_channel_sigma': 128, 'floor_num': 8,
              'hidden_size': 128,
              # g3fa-jax option, fixed at 256 in the official renderer; must equal the
              # generator's feature width min(max_features, block_expansion * 2^num_down_blocks).
              'output_channels': 256,
          },
      },
      'discriminator_params': {
          'scales': (1,), 'block_expansion': 32, 'max_features': 512, 'num_blocks': 4, 'sn': True,
      },
  })


def unsup3d_config() -> ml_collections.ConfigDict:
  """The released Unsup3D CelebA depth network (`checkpoint030.pth`, `netD`) and its camera."""
  return ml_collections.ConfigDict({
      'nf': 64, 'zdim': 256, 'image_size': 64, 'min_depth': 0.9, 'max_depth': 1.1,
      'border_depth': 1.05, 'fov': 10.0,
  })


def model_config_from_official(model_params: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """Builds a model config from an official `model_params` mapping (as parsed from its YAML).

  Keys missing from `model_params` keep their vox-256 values; unknown keys raise `ValueError`.
  """
  config = vox256_model_config()
  _merge_strict(config, model_params, path='model_params')
  return config


def _merge_strict(config: ml_collections.ConfigDict, update: Mapping[str, Any], path: str) -> None:
  for key, value in update.items():
    if key not in config:
      raise ValueError(f'{path}.{key}: unknown model config field (known: {sorted(config.keys())})')
    if isinstance(config[key], ml_collections.ConfigDict):
      if not isinstance(value, Mapping):
        raise ValueError(f'{path}.{key}: expected a mapping, got {type(value).__name__}')
      _merge_strict(config[key], value, f'{path}.{key}')
    else:
      config[key] = list(value) if isinstance(value, (list, tuple)) else value


def default_config() -> ml_collections.ConfigDict:
  """The model part of the official recipe (what `configs/vox.py` starts from)."""
  config = ml_collections.ConfigDict()
  config.model = vox256_model_config()
  config.unsup3d = unsup3d_config()
  config.image_size = 256
  # Weighted ensemble of the patch maps: (w_rgb D_rgb + w_depth D_depth + w_normal D_normal) / sum w.
  config.ensemble = ml_collections.ConfigDict({'w_rgb': 1.0, 'w_depth': 0.25, 'w_normal': 0.25})
  return config


def load_config(path: str) -> ml_collections.ConfigDict:
  """A run config from a python file with `get_config()` or an official G3FA YAML file.

  An official YAML's `model_params` override the vox-256 model; the rest of it is ignored.
  """
  import importlib.util  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such config file')
  if path.endswith(('.yaml', '.yml')):
    import yaml  # pylint: disable=g-import-not-at-top
    with open(path) as f:
      official = yaml.safe_load(f)
    if not isinstance(official, dict) or 'model_params' not in official:
      raise ValueError(f'{path}: not an official G3FA config (no model_params)')
    config = default_config()
    config.model = model_config_from_official(official['model_params'])
    return config
  spec = importlib.util.spec_from_file_location('_g3fa_user_config', path)
  if spec is None or spec.loader is None or not path.endswith('.py'):
    raise ValueError(f'{path}: a config is a python file with get_config() or an official .yaml')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise ValueError(f'{path}: has no get_config()')
  return module.get_config()


def load_base(config_file: str, name: str) -> ml_collections.ConfigDict:
  """The config `name` (e.g. 'vox.py') in the folder of the config file `config_file`.

  How a config builds on another: `config = model_config.load_base(__file__, 'vox.py')`.
  """
  import os  # pylint: disable=g-import-not-at-top
  return load_config(os.path.join(os.path.dirname(os.path.abspath(config_file)), name))
