"""The motion of a live session: the source driven from a reference frame the user sets.

As in the official live demo, relative motion is measured from a reference driving frame: the
first face crop of the session, and again whenever the user presses the reference key (look at
the camera the way the portrait looks, then press it). With absolute motion the reference is
unused.
"""

from __future__ import annotations

import numpy as np

from g3fa_jax.animate import side_by_side


class LiveDriver:
  """One frame at a time through `Animator.reference` / `Animator.drive` (the CLI's networks).

  Args:
    animator: a `g3fa_jax.inference.animator.Animator`.
    source: (S, S, 3) uint8 source face crop at the model's size.
    relative: relative motion (FOMM); False: the driving keypoints as they are.
    adapt_movement_scale: scale relative motion by the keypoint hull areas.
  """

  def __init__(self, animator, source: np.ndarray, relative: bool = True,
               adapt_movement_scale: bool = True):
    self.animator = animator
    self.source = source.astype(np.float32) / 255.0
    self.relative = relative
    self.adapt_movement_scale = adapt_movement_scale
    self.reference = None  # An Animator MotionReference once a reference frame is set.

  @property
  def size(self) -> int:
    """The model's frame side."""
    return self.source.shape[0]

  def set_reference(self, crop: np.ndarray) -> None:
    """Relative motion is measured from this (S, S, 3) uint8 driving crop from now on."""
    self.reference = self.animator.reference(self.source, crop, self.relative,
                                             self.adapt_movement_scale)

  def animate(self, crop: np.ndarray) -> np.ndarray:
    """The source moved like this (S, S, 3) uint8 driving crop: (S, S, 3) uint8. The first crop
    becomes the reference if none is set."""
    if self.reference is None:
      self.set_reference(crop)
    prediction = self.animator.drive(self.reference, crop[None])
    return side_by_side.to_uint8(np.asarray(prediction)[0])

  def warm_up(self) -> None:
    """Compiles the networks on the source itself (so the first live frame is not slow); the
    reference is left unset."""
    crop = np.round(self.source * 255).astype(np.uint8)
    self.animate(crop)
    self.reference = None
