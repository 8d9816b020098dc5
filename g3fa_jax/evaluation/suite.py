"""The metric networks of an evaluation, loaded once, as jitted batch functions.

A metric whose converted weights are absent is not computed: `MetricSuite.unavailable` holds,
per metric, why and the command that makes the weights.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.metrics import akd
from g3fa_jax.metrics import arcface
from g3fa_jax.metrics import csim
from g3fa_jax.metrics import inception
from g3fa_jax.metrics import lpips
from g3fa_jax.metrics import pixel
from g3fa_jax.metrics import ssim
from g3fa_jax.metrics import weights as weights_lib

@dataclasses.dataclass(frozen=True)
class Unavailable:
  """Why a metric is not computed, and the command that makes its weights."""
  reason: str
  command: str = ''


def weights_path(cfg: ml_collections.ConfigDict, name: str) -> pathlib.Path:
  """`cfg.<name>` if set, else `<cfg.weights_dir>/<name>`."""
  explicit = cfg.get(name, '')
  return pathlib.Path(explicit or pathlib.Path(cfg.weights_dir) / name)


def _load(directory, name, template_fn, command):
  try:
    return weights_lib.load_metric_weights(directory, name, template_fn, command), None
  except ckpt.MissingCheckpointError as e:
    return None, Unavailable(str(e), command)


class MetricSuite:
  """Loaded metric networks and their jitted batch functions.

  Attributes:
    lpips_nets: LPIPS variants loaded (in `cfg.lpips_nets` order).
    unavailable: metric name -> `Unavailable` for those not computed ('lpips_alex', 'lpips_vgg',
      'fid', 'csim', 'akd').
  """

  def __init__(self, *, lpips_variables: dict[str, Any], inception_variables: Any | None,
               arcface_weights: tuple[Any, dict] | None, detector: akd.BatchDetector | None,
               unavailable: dict[str, Unavailable], csim_alignment: str = 'mtcnn'):
    self.lpips_nets = tuple(lpips_variables)
    self.unavailable = dict(unavailable)
    self._detector = detector
    self._csim_alignment = csim_alignment if detector is not None else 'resize'
    self._frame_metrics = jax.jit(functools.partial(_frame_metrics, nets=self.lpips_nets))
    self._lpips_variables = lpips_variables
    self._inception_variables = inception_variables
    self._features = jax.jit(inception.fid_features) if inception_variables is not None else None
    self._arcface = arcface_weights
    if arcface_weights is not None:
      info = arcface_weights[1]
      self._embed = jax.jit(functools.partial(arcface.embed, layers=tuple(info['layers']),
                                              num_features=int(info['num_features'])))

  @classmethod
  def load(cls, cfg: ml_collections.ConfigDict) -> 'MetricSuite':
    """Loads every metric network `cfg` (an eval config) names; absent ones are recorded."""
    unavailable: dict[str, Unavailable] = {}
    lpips_variables = {}
    for net in [n.strip() for n in str(cfg.lpips_nets).split(',') if n.strip()]:
      if net not in lpips.NETS:
        raise ValueError(f'eval.lpips_nets: unknown LPIPS net {net!r} (known: alex, vgg)')
      path = weights_path(cfg, f'lpips_{net}')
      loaded, missing = _load(path, lpips.NAME, lpips.template_from_info,
                              lpips.make_command(net, str(path)))
      if missing:
        unavailable[f'lpips_{net}'] = missing
      else:
        if loaded[1].get('net') != net:
          raise ValueError(f'{path}: holds LPIPS {loaded[1].get("net")!r} weights, not {net!r}')
        lpips_variables[net] = jax.device_put(loaded[0])
    path = weights_path(cfg, 'inception')
    loaded, missing = _load(path, inception.NAME, inception.template_from_info,
                            inception.make_command(str(path)))
    inception_variables = None if missing else jax.device_put(loaded[0])
    if missing:
      unavailable['fid'] = missing
    path = weights_path(cfg, 'arcface')
    loaded, missing = _load(path, arcface.NAME, arcface.template_from_info,
                            arcface.make_command(str(path)))
    arcface_weights = None if missing else (jax.device_put(loaded[0]), loaded[1])
    if missing:
      unavailable['csim'] = missing
    try:
      detector = akd.default_batch_detector()
    except FileNotFoundError as e:
      detector = None
      unavailable['akd'] = Unavailable(str(e), akd.MAKE_COMMAND)
    for name, why in unavailable.items():
      logging.warning('%s not computed: %s', name, why.reason)
    return cls(lpips_variables=lpips_variables, inception_variables=inception_variables,
               arcface_weights=arcface_weights, detector=detector, unavailable=unavailable,
               csim_alignment=cfg.get('csim_alignment', 'mtcnn'))

  @property
  def has_fid(self) -> bool:
    return self._features is not None

  @property
  def has_csim(self) -> bool:
    return self._arcface is not None

  @property
  def has_akd(self) -> bool:
    return self._detector is not None

  def frame_metrics(self, prediction: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame 'l1', 'psnr', 'ssim' and 'lpips_<net>' of (B, H, W, 3) [0, 1] batches -> (B,)."""
    out = self._frame_metrics(self._lpips_variables, jnp.asarray(prediction),
                              jnp.asarray(target))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}

  def fid_features(self, images: np.ndarray) -> np.ndarray:
    """Inception pool3 features (B, 2048) of [0, 1] images."""
    return np.asarray(self._features(self._inception_variables, jnp.asarray(images)))

  def landmarks(self, images: np.ndarray) -> np.ndarray:
    """(B, 5, 2) MTCNN landmarks of the most confident face, NaN where there is none."""
    return akd.best_landmarks(images, self._detector)

  def identity_embeddings(self, images: np.ndarray, n: int | None = None
                          ) -> tuple[np.ndarray, int]:
    """Unit ArcFace embeddings of the faces in a batch of [0, 1] frames.

    Args:
      images: (B, H, W, 3); only the first `n` (default all) are real, the rest padding that
        keeps the batch shape (and so the compiled function) fixed.
      n: number of real images.

    Returns:
      (embeddings (n, d), number of the n frames without a detected face, which are resized
      whole instead of aligned).
    """
    images = np.asarray(images, np.float32)
    n = len(images) if n is None else n
    if self._csim_alignment == 'mtcnn':
      marks = self.landmarks(images[:n])
      found = ~np.isnan(marks).any(axis=(1, 2))
      points = [m if f else None for m, f in zip(marks, found)] + [None] * (len(images) - n)
      maps = csim.alignment_matrices(points, images.shape[1])
      faces = csim.align_faces(jnp.asarray(images), jnp.asarray(maps))
      misses = int((~found).sum())
    else:
      faces, misses = csim.resize_faces(jnp.asarray(images)), 0
    return np.asarray(self._embed(self._arcface[0], faces))[:n], misses


def _frame_metrics(lpips_variables: dict[str, Any], prediction: jax.Array, target: jax.Array,
                   nets: tuple[str, ...]) -> dict[str, jax.Array]:
  out = {'l1': pixel.l1_255(prediction, target), 'psnr': pixel.psnr(prediction, target),
         'ssim': ssim.ssim(prediction, target)}
  for net in nets:
    out[f'lpips_{net}'] = lpips.Lpips(net).apply(lpips_variables[net], prediction, target)
  return out
