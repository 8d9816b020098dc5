"""How well a learnt motion matches the true motion of the held-out synthetic pairs.

The held-out L1 alone can mislead: a warp by a fraction of a pixel blurs the source, and a blurred
source is closer (in L1) to a driving frame it does not match than the sharp one, so a motion
that does not follow the head at all can beat copying the source by a few per cent. The synthetic
clips know the true motion (`g3fa_jax.synthetic.flow.backward_grid`), so the learnt sampling grid
is compared with it on the person (foreground) points of the held-out pairs:

- gain: the least-squares slope of the learnt displacement (grid minus identity) on the true one,
  over all foreground points: 1 for the true motion, 0 for a motion that ignores the head, < 0
  for one that moves the wrong way;
- endpoint error: the mean distance between the learnt and the true source position, in pixels
  of the frame, next to the same figure for the identity (no motion);
- the same two for the keypoints: each driving keypoint's true position in the source (the true
  grid sampled at it) against the source keypoint, so a keypoint that tracks the head scores a
  keypoint gain of 1 (keypoints on the background do not move and count for nothing);
- the keypoints' spread: the root mean squared distance of the K keypoints from their mean, in
  pixels (near 0: they all sit in one place);
- the keypoints' shift gain (`TrueMotionScore.shift_gain`, needs no ground truth): the slope of
  the keypoints' displacement on a 2D shift of the whole source frame by a few pixels: 1 for
  keypoints that follow the image's content, 0 for keypoints that ignore it. Next to the keypoint
  gain it tells a detector that ignores the image (both near 0) from one that follows the 2D
  content but not the face's surface, e.g. the head's outline, which barely moves when the head
  turns (shift gain near 1, keypoint gain well below).
"""

from __future__ import annotations

from typing import Callable

import ml_collections
import numpy as np

from g3fa_jax.synthetic import dataset
from g3fa_jax.synthetic import flow


class TrueMotionScore:
  """The held-out pairs (`g3fa_jax.demo.job.heldout_batches`) with their true sampling grids at
  the dense motion's resolution `grid_size`, computed once."""

  def __init__(self, batches, image_size: int, grid_size: int):
    self.image_size = int(image_size)
    self.identity = flow.grid_coordinates(grid_size)
    self.pairs = []  # (source, driving, true displacement (b, g, g, 2), foreground (b, g, g))
    for record, driving_idx, source, driving in batches:
      poses = flow.clip_poses(record)
      depth = dataset.read_geometry(record, driving_idx)[0][..., 0]
      truths = [flow.backward_grid(d, poses, j, 0, grid_size) for d, j in zip(depth, driving_idx)]
      self.pairs.append((source, driving, np.stack([t for t, _ in truths]) - self.identity,
                         np.stack([f for _, f in truths])))

  def __call__(self, motion: Callable[[np.ndarray, np.ndarray],
                                      tuple[np.ndarray, np.ndarray, np.ndarray]]
               ) -> dict[str, float]:
    """Scores `motion(source, driving)` -> (sampling grids (b, g, g, 2), source keypoints
    (b, K, 2), driving keypoints (b, K, 2)), all in [-1, 1] (x, y).

    Returns {'gain', 'endpoint_px', 'identity_endpoint_px', 'keypoint_gain',
    'keypoint_endpoint_px', 'keypoint_identity_endpoint_px', 'keypoint_spread_px'} (see the
    module docstring)."""
    dense, keypoints, spread = _Fit(), _Fit(), []
    for source, driving, truth, foreground in self.pairs:
      grid, kp_source, kp_driving = (np.asarray(x) for x in motion(source, driving))
      dense.add((grid - self.identity)[foreground], truth[foreground])
      true_at_kp = np.stack([sample_field(t, kp) for t, kp in zip(truth, kp_driving)])
      keypoints.add((kp_source - kp_driving).reshape(-1, 2), true_at_kp.reshape(-1, 2))
      spread.append(np.sqrt(np.sum(np.var(kp_driving, axis=1), axis=-1)).mean())
    to_px = (self.image_size - 1) / 2
    return {**dense.figures('', to_px), **keypoints.figures('keypoint_', to_px),
            'keypoint_spread_px': float(np.mean(spread)) * to_px}

  def shift_gain(self, keypoints: Callable[[np.ndarray], np.ndarray], shift_px: int = 2
                 ) -> float:
    """`shift_gain` of `keypoints` on the held-out source frames (one per batch of pairs: a
    batch's pairs share their source)."""
    return shift_gain(keypoints, np.concatenate([source[:1] for source, _, _, _ in self.pairs]),
                      shift_px)


def shift_gain(keypoints: Callable[[np.ndarray], np.ndarray], frames: np.ndarray,
               shift_px: int = 2) -> float:
  """The least-squares slope of the displacement of `keypoints(frames)` -> (b, K, 2) in [-1, 1]
  (x, y) on a shift of the (b, S, S, C) frames by `shift_px` pixels right, then down."""
  before = np.asarray(keypoints(frames))
  along = power = 0.
  for dx, dy in ((shift_px, 0), (0, shift_px)):
    after = np.asarray(keypoints(shift_frames(frames, dx, dy)))
    expected = np.array([dx, dy], np.float64) * 2 / (frames.shape[2] - 1)
    along += float(np.sum((after - before) * expected))
    power += float(np.sum(expected ** 2)) * before.shape[0] * before.shape[1]
  return along / max(power, 1e-12)


def shift_frames(frames: np.ndarray, dx: int, dy: int) -> np.ndarray:
  """(b, H, W, C) frames with their content moved `dx` pixels right and `dy` down (>= 0), the
  uncovered rows and columns repeating the edge."""
  h, w = frames.shape[1:3]
  padded = np.pad(frames, ((0, 0), (dy, 0), (dx, 0), (0, 0)), mode='edge')
  return padded[:, :h, :w]


class _Fit:
  """Sums for the slope of learnt on true displacements and their mean endpoint errors."""

  def __init__(self):
    self.along = self.power = self.error = self.identity_error = self.points = 0.

  def add(self, learnt: np.ndarray, true: np.ndarray) -> None:
    self.along += float(np.sum(learnt * true))
    self.power += float(np.sum(true * true))
    self.error += float(np.linalg.norm(learnt - true, axis=-1).sum())
    self.identity_error += float(np.linalg.norm(true, axis=-1).sum())
    self.points += len(true)

  def figures(self, prefix: str, to_px: float) -> dict[str, float]:
    n = max(self.points, 1)
    return {prefix + 'gain': self.along / max(self.power, 1e-12),
            prefix + 'endpoint_px': self.error / n * to_px,
            prefix + 'identity_endpoint_px': self.identity_error / n * to_px}


def sample_field(field: np.ndarray, points: np.ndarray) -> np.ndarray:
  """field (g, g, C) sampled at points (K, 2) in [-1, 1] (x, y; align_corners=True) -> (K, C)."""
  g = field.shape[0]
  xy = np.clip((points + 1) / 2 * (g - 1), 0, g - 1)
  x0 = np.minimum(np.floor(xy).astype(int), g - 2)
  fx, fy = (xy - x0)[:, :1], (xy - x0)[:, 1:]
  c00, c01 = field[x0[:, 1], x0[:, 0]], field[x0[:, 1], x0[:, 0] + 1]
  c10, c11 = field[x0[:, 1] + 1, x0[:, 0]], field[x0[:, 1] + 1, x0[:, 0] + 1]
  return (c00 * (1 - fx) + c01 * fx) * (1 - fy) + (c10 * (1 - fx) + c11 * fx) * fy


def heldout_score(config: ml_collections.ConfigDict, grid_size: int, split: str = 'test',
                  max_clips: int = 0) -> TrueMotionScore:
  """The score on the job's held-out pairs, those of its held-out L1 (or the same pairs of the
  first `max_clips` clips of the training split, split='train')."""
  from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top  (job imports this module)
  return TrueMotionScore(job.heldout_batches(config, 8, split, max_clips),
                         int(config.image_size), grid_size)


def truly_warped(record: dict, driving_idx: list[int], source: np.ndarray, grid_size: int,
                 with_mouth: bool = False) -> np.ndarray:
  """The source warped by the true motion: the head's rigid motion, exactly, and with
  `with_mouth` the mouth's opening too (`g3fa_jax.synthetic.flow.jaw_drop`, approximately); the
  light's drift is in neither (`g3fa_jax.demo.fitted_motion` fits the best warp with the driving
  frame in view).

  Args:
    record: a synthetic clip's record (`g3fa_jax.synthetic.dataset`), with its depth maps.
    driving_idx: (b,) frame indices of the clip to move the source to.
    source: (b, H, W, 3) in [0, 1], the clip's frame 0 (as in `job.heldout_batches`).
    grid_size: the true motion's grid (the dense motion network's resolution), resized
      bilinearly to the frame as the generator resizes its motion (align_corners=True warps).

  Returns:
    (b, H, W, 3) float32 in [0, 1].
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from g3fa_jax.models.generator import deform_input  # pylint: disable=g-import-not-at-top
  poses = flow.clip_poses(record)
  depth = dataset.read_geometry(record, list(driving_idx))[0][..., 0]
  grids = np.stack([flow.backward_grid(d, poses, j, 0, grid_size, with_mouth=with_mouth)[0]
                    for d, j in zip(depth, driving_idx)])
  return np.asarray(deform_input(jnp.asarray(source, jnp.float32), jnp.asarray(grids), True))
