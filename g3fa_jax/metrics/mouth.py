"""Mouth opening read from an image by a small regressor trained on the synthetic heads' ground
truth (each frame's opening in [0, 1]), as `pose` reads the head's pose: applied to generated and
to real driving frames, it says whether an animated mouth opens with the driving one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from g3fa_jax.metrics import pose


def mouth_reader(width: int = 32) -> pose.FrameRegressor:
  """(B, H, W, 3) images in [0, 1] -> (B, 1) mouth opening (0 closed, 1 the widest)."""
  return pose.FrameRegressor(width=width, outputs=1, scale=1.0, output_name='mouth')


def train_mouth_reader(images: np.ndarray, openings: np.ndarray, *, steps: int = 1500,
                       width: int = 32, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
  """Fits `mouth_reader(width)` to images (N, H, W, 3) in [0, 1] and their openings (N,) in
  [0, 1]; returns its variables."""
  openings = np.asarray(openings, np.float32)
  if openings.ndim != 1:
    raise ValueError(f'train_mouth_reader: openings must be (N,), got {openings.shape}')
  return pose.train_frame_regressor(mouth_reader(width), images, openings[:, None], steps=steps,
                                    seed=seed, **kwargs)


def read_mouth(variables: Any, images: np.ndarray, width: int = 32) -> np.ndarray:
  """(N,) mouth openings of images (N, H, W, 3) in [0, 1]."""
  return pose.predict_frames(mouth_reader(width), variables, images)[:, 0]


def opening_gain(predicted: np.ndarray, target: np.ndarray, reference: int) -> float:
  """How far a generated clip's mouth opens and closes with the driving one: the least-squares
  gain of the predicted opening's change on the target's (T,), both relative to frame
  `reference` (`pose.change_gains`): 1 all the way, 0 a mouth that does not move; nan when the
  target's mouth does not move."""
  predicted, target = np.asarray(predicted), np.asarray(target)
  if predicted.ndim != 1 or predicted.shape != target.shape:
    raise ValueError(f'opening_gain: predicted {predicted.shape} and target {target.shape} must '
                     'both be (T,)')
  return float(pose.change_gains(predicted[:, None], target[:, None], reference)[0])
