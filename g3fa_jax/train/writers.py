"""Metric writers: clu's log lines plus TensorBoard event files (through tensorboardX, so that
TensorFlow is not needed). Only process 0 writes event files; every process logs."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from typing import Any, Mapping, Optional

import jax
import numpy as np
from absl import logging


def _import_metric_writers():
  """`clu.metric_writers`, importable without TensorFlow.

  clu's package imports its TensorFlow `SummaryWriter` eagerly; when TensorFlow is absent a stub
  takes that module's place (this project writes event files with tensorboardX instead).
  """
  name = 'clu.metric_writers.summary_writer'
  if name not in sys.modules and importlib.util.find_spec('tensorflow') is None:
    stub = types.ModuleType(name)

    class SummaryWriter:  # pylint: disable=too-few-public-methods
      def __init__(self, *args, **kwargs):
        raise ImportError('clu.metric_writers.SummaryWriter needs TensorFlow; use '
                          'g3fa_jax.train.writers.TensorBoardWriter')

    stub.SummaryWriter = SummaryWriter
    sys.modules[name] = stub
  from clu import metric_writers as module  # pylint: disable=g-import-not-at-top
  return module


metric_writers = _import_metric_writers()
interface = metric_writers.interface


class TensorBoardWriter(interface.MetricWriter):
  """clu `MetricWriter` over `tensorboardX.SummaryWriter` (scalars, images, texts, histograms)."""

  def __init__(self, logdir: str):
    import tensorboardX  # pylint: disable=g-import-not-at-top
    self._writer = tensorboardX.SummaryWriter(logdir=logdir, flush_secs=30)

  def write_summaries(self, step: int, values: Mapping[str, Any],
                      metadata: Optional[Mapping[str, Any]] = None):
    for key, value in values.items():
      value = np.asarray(value)
      if value.ndim == 0:
        self._writer.add_scalar(key, float(value), global_step=step)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
    for key, value in scalars.items():
      self._writer.add_scalar(key, float(value), global_step=step)

  def write_images(self, step: int, images: Mapping[str, Any]):
    """images: name -> (N, H, W, C) or (H, W, C) float in [0, 1] or uint8."""
    for key, value in images.items():
      value = np.asarray(value)
      if value.ndim == 3:
        value = value[None]
      self._writer.add_images(key, value, global_step=step, dataformats='NHWC')

  def write_videos(self, step: int, videos: Mapping[str, Any]):
    logging.log_first_n(logging.WARNING, 'TensorBoardWriter does not write videos.', 1)

  def write_audios(self, step: int, audios: Mapping[str, Any], *, sample_rate: int):
    logging.log_first_n(logging.WARNING, 'TensorBoardWriter does not write audio.', 1)

  def write_texts(self, step: int, texts: Mapping[str, str]):
    for key, value in texts.items():
      self._writer.add_text(key, value, global_step=step)

  def write_histograms(self, step: int, arrays: Mapping[str, Any],
                       num_buckets: Optional[Mapping[str, int]] = None):
    for key, value in arrays.items():
      self._writer.add_histogram(key, np.asarray(value), global_step=step)

  def write_hparams(self, hparams: Mapping[str, Any]):
    self._writer.add_text('hparams', '\n'.join(f'    {k}: {v}' for k, v in sorted(hparams.items())))

  def flush(self):
    self._writer.flush()

  def close(self):
    self._writer.close()


def create_writer(logdir: Optional[str], *, asynchronous: bool = True) -> metric_writers.MetricWriter:
  """Log lines on every process; TensorBoard event files under `logdir` on process 0.

  Without tensorboardX installed only the log lines are written (with a warning).
  """
  writers: list[interface.MetricWriter] = [metric_writers.LoggingWriter()]
  if logdir and jax.process_index() == 0:
    try:
      os.makedirs(logdir, exist_ok=True)
      writers.append(TensorBoardWriter(logdir))
    except ImportError:
      logging.warning('tensorboardX is not installed: metrics go to the log only '
                      '(pip install tensorboardX for TensorBoard event files).')
  if asynchronous:
    return metric_writers.AsyncMultiWriter(writers)
  return metric_writers.MultiWriter(writers)
