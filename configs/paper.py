"""The G3FA recipe as the paper describes it (BMVC 2024), where it differs from the official code.

- Adam betas (0.5, 0.9) instead of (0.5, 0.999).
- Ensemble weights lambda = 0.5 / 0.25 / 0.25 (RGB / depth / normal) summing to 1, instead of
  1 : 0.25 : 0.25 normalised.
- The depth and normal of the generated frame are differentiable in it, so the geometry
  discriminators' gradients reach the generator through the frozen Unsup3D.

Everything else is `configs/vox.py`.
"""

import ml_collections

from g3fa_jax import model_config


def get_config() -> ml_collections.ConfigDict:
  config = model_config.load_base(__file__, 'vox.py')
  config.train.adam_b2 = 0.9
  config.ensemble.w_rgb = 0.5
  config.ensemble.w_depth = 0.25
  config.ensemble.w_normal = 0.25
  config.train.geometry_mode = 'differentiable'
  return config
