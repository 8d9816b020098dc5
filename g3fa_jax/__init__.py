"""g3fa-jax: G3FA (Geometry-guided GAN for Face Animation) in JAX/Flax.

Public inference API: `Animator` (keypoints, reconstruction) and `InverseRenderer` (Unsup3D depth
and normals), both restored from orbax checkpoints.
"""

__version__ = '0.1.0'


def __getattr__(name):
  # Lazy, so that `import g3fa_jax` stays cheap for data_prep and the converters.
  if name == 'Animator':
    from g3fa_jax.inference.animator import Animator  # pylint: disable=g-import-not-at-top
    return Animator
  if name == 'InverseRenderer':
    from g3fa_jax.inference.inverse_renderer import InverseRenderer  # pylint: disable=g-import-not-at-top
    return InverseRenderer
  raise AttributeError(f'module g3fa_jax has no attribute {name!r}')


__all__ = ['Animator', 'InverseRenderer']
