"""A 3x3 'same' convolution of a nearest-upsampled map, computed on the small map.

With integer factor k, output pixel k*i + r (phase r in 0..k-1) of `conv3x3(repeat_k(x))` reads
small-map pixels i + floor((r + d - 1) / k) for the kernel taps d = 0, 1, 2: for k >= 2 phase 0
reads offsets {-1, 0}, phase k-1 {0, +1}, every other phase only {0}. Summing the taps that land on
the same small pixel gives each phase a 2-, 1- or 2-tap kernel per axis; phases with the same taps
share one convolution (their kernels stacked along the output channels). Per small pixel that is
(2 + (k - 2) + 2)^2 = (k + 2)^2 tap products instead of 9 k^2: 16 instead of 36 for k = 2, 36
instead of 144 for k = 4. The result equals the convolution of the upsampled map up to float
rounding (a sum of taps times a value instead of a sum of products), and zero padding of the large
map is zero padding of the small one.
"""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp
import numpy as np
from jax import lax


def integer_factor(small: tuple[int, int], large: tuple[int, int]) -> Optional[int]:
  """k when `large` == k * `small` in both axes (k >= 1), else None."""
  (h, w), (big_h, big_w) = small, large
  if big_h % h or big_w % w or big_h // h != big_w // w:
    return None
  return big_h // h


def phase_classes(factor: int) -> list[tuple[int, list[np.ndarray]]]:
  """Per axis: [(first small offset, [tap matrix of each phase of the class])], by phase.

  A class is a run of consecutive phases reading the same small offsets first..first+n-1; a
  phase's tap matrix A (n, 3) has A[t, d] = 1 when kernel tap d lands on offset first + t.
  """
  classes: list[tuple[int, list[np.ndarray]]] = []
  keys: list[tuple[int, ...]] = []
  for r in range(factor):
    offsets = [(r + d - 1) // factor for d in range(3)]
    span = tuple(sorted(set(offsets)))
    taps = np.array([[1.0 if offsets[d] == m else 0.0 for d in range(3)] for m in span],
                    np.float32)
    if keys and keys[-1] == span:
      classes[-1][1].append(taps)
    else:
      keys.append(span)
      classes.append((span[0], [taps]))
  return classes


def _class_conv(padded: jnp.ndarray, kernel: jnp.ndarray, first_y: int, taps_y: list[np.ndarray],
                first_x: int, taps_x: list[np.ndarray], size: tuple[int, int]) -> jnp.ndarray:
  """The phases (taps_y x taps_x) of one class: (B, h, w, len(taps_y), len(taps_x), out)."""
  h, w = size
  ny, nx = taps_y[0].shape[0], taps_x[0].shape[0]
  ay = np.stack(taps_y)  # (phases_y, ny, 3)
  ax = np.stack(taps_x)  # (phases_x, nx, 3)
  effective = jnp.einsum('pad,qbe,deio->abipqo', ay, ax, kernel.astype(jnp.float32))
  cin, cout = kernel.shape[2], kernel.shape[3]
  effective = effective.reshape(ny, nx, cin, len(taps_y) * len(taps_x) * cout)
  window = padded[:, 1 + first_y:1 + first_y + h + ny - 1, 1 + first_x:1 + first_x + w + nx - 1]
  out = lax.conv_general_dilated(window, effective.astype(padded.dtype), (1, 1), 'VALID',
                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return out.reshape(out.shape[:3] + (len(taps_y), len(taps_x), cout))


def nearest_upsampled_conv3x3(x: jnp.ndarray, kernel: jnp.ndarray, factor: int) -> jnp.ndarray:
  """conv3x3(nearest_upsample(x, factor)) with zero padding 1, without bias.

  Args:
    x: (B, h, w, C_in) small map.
    kernel: (3, 3, C_in, C_out) HWIO kernel of the convolution on the large map.
    factor: integer upsampling factor k >= 1.

  Returns:
    (B, k h, k w, C_out) in x's dtype.
  """
  if factor < 1 or kernel.shape[:2] != (3, 3) or kernel.shape[2] != x.shape[-1]:
    raise ValueError(f'nearest_upsampled_conv3x3: factor {factor} must be >= 1 and kernel '
                     f'{kernel.shape} must be (3, 3, {x.shape[-1]}, out)')
  b, h, w, _ = x.shape
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  classes = phase_classes(factor)
  rows = []
  for first_y, taps_y in classes:
    row = [_class_conv(padded, kernel, first_y, taps_y, first_x, taps_x, (h, w))
           for first_x, taps_x in classes]
    rows.append(jnp.concatenate(row, axis=4) if len(row) > 1 else row[0])
  out = jnp.concatenate(rows, axis=3) if len(rows) > 1 else rows[0]  # (B, h, w, k, k, out)
  out = jnp.transpose(out, (0, 1, 3, 2, 4, 5))
  return out.reshape(b, h * factor, w * factor, kernel.shape[-1])
