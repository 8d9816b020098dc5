"""The free-form motion fitted to a pair with the driving frame in view
(g3fa_jax/demo/fitted_motion.py)."""

from __future__ import annotations

import numpy as np

from g3fa_jax.demo import fitted_motion
from g3fa_jax.synthetic import flow

SIZE = 32
GRID = 8


def _pattern(shift_x: float = 0.) -> np.ndarray:
  """(1, SIZE, SIZE, 3) smooth colour pattern in [0, 1], moved right by `shift_x` pixels."""
  y, x = np.meshgrid(np.arange(SIZE, dtype=np.float64),
                     np.arange(SIZE, dtype=np.float64) - shift_x, indexing='ij')
  channels = [0.5 + 0.2 * np.sin(2 * np.pi * (x / 13 + c / 3))
              + 0.15 * np.cos(2 * np.pi * (y / 11 + x / 29 + c / 5)) for c in range(3)]
  return np.stack(channels, -1)[None].astype(np.float32)


def test_a_frame_fitted_to_itself_stays_where_it_is():
  source = _pattern()
  warped, grid = fitted_motion.fitted_warp(source, source, GRID, steps=50)
  # Within a third of a pixel: Adam's first steps move every cell by about its learning rate
  # (0.15 px here) whatever the size of the gradient, which the float rounding of the identity
  # warp makes nonzero; the fit then comes back.
  moved = (grid[0] - flow.grid_coordinates(GRID)) * (SIZE - 1) / 2
  assert np.abs(moved).max() < 0.3
  assert np.abs(warped - source).mean() < 2e-3


def test_a_shifted_frame_is_fitted_by_the_shift():
  source, driving = _pattern(), _pattern(shift_x=2.)
  warped, grid = fitted_motion.fitted_warp(source, driving, GRID, steps=300)
  copying = np.abs(source - driving).mean()
  assert np.abs(warped - driving).mean() < 0.2 * copying
  # Backward warp: the driving frame's pixel x shows the source's x - 2, so the grid's x moves by
  # -2 pixels (in [-1, 1] units, 2 / (SIZE - 1) per pixel) away from the borders.
  moved = (grid[0] - flow.grid_coordinates(GRID))[2:-2, 2:-2] * (SIZE - 1) / 2
  np.testing.assert_allclose(moved[..., 0].mean(), -2., atol=0.4)
  np.testing.assert_allclose(moved[..., 1].mean(), 0., atol=0.4)
