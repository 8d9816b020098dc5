"""The official G3FA recipe on VoxCeleb-style 256x256 face videos (`config/vox-256.yaml`)."""

import ml_collections

from g3fa_jax import model_config


def get_config() -> ml_collections.ConfigDict:
  config = model_config.default_config()
  return config
