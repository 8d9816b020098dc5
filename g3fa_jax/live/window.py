"""The OpenCV window of a live session (only without --no-window)."""

from __future__ import annotations

import os
import sys

import numpy as np

from g3fa_jax.animate.errors import AnimateError
from g3fa_jax.live import camera


class Window:
  """Shows RGB frames and reports the key pressed (or None)."""

  def __init__(self, title: str = 'g3fa-jax live'):
    if sys.platform.startswith('linux') and not (os.environ.get('DISPLAY') or
                                                 os.environ.get('WAYLAND_DISPLAY')):
      # Checked first: OpenCV's Qt backend aborts the process when it finds no display.
      raise AnimateError('no display to open a window on (DISPLAY is not set): run with '
                         '--no-window --out session.mp4')
    if 'cv2' not in sys.modules and 'av' in sys.modules:
      raise AnimateError('import cv2 before av (PyAV): an OpenCV window opened after PyAV loaded '
                         'hangs; python -m g3fa_jax.live does this for you')
    self._cv2 = camera.import_cv2()
    self.title = title
    try:
      self._cv2.namedWindow(title, self._cv2.WINDOW_AUTOSIZE)
    except self._cv2.error as e:
      raise AnimateError('OpenCV cannot open a window here (opencv-python-headless, or no '
                         "display): pip install 'g3fa-jax[live]' on a desktop, or run with "
                         '--no-window --out session.mp4') from e

  def show(self, frame: np.ndarray) -> str | None:
    """Displays the (H, W, 3) uint8 RGB frame; the key pressed meanwhile, 'q' if the window was
    closed, else None."""
    self._cv2.imshow(self.title, np.ascontiguousarray(frame[..., ::-1]))
    code = self._cv2.waitKey(1)
    if self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE) < 1:
      return 'q'
    return chr(code & 0xFF) if code >= 0 else None

  def close(self) -> None:
    self._cv2.destroyWindow(self.title)
