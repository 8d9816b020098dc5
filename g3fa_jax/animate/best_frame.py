"""`--find-best-frame`: the driving frame whose face pose is closest to the source's.

Relative motion assumes the reference driving frame shows the face in the source's pose; FOMM's
demo therefore picks the driving frame whose landmarks, normalised for position and size, are
nearest to the source's, and animates forward and backward from it. Animating every frame
relative to that frame gives exactly those frames (each frame's generation is independent), so
the result is `Animator.animate(..., initial_frame=best)`.

Points are (N, 2) per image: MTCNN's 5 landmarks (eyes, nose, mouth corners) or the model's
keypoints.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from g3fa_jax.inference import motion


def normalized_pose(points: np.ndarray) -> np.ndarray:
  """(N, 2) points centred on their mean and divided by sqrt(convex hull area) (size-free)."""
  points = np.asarray(points, np.float64)
  centred = points - points.mean(axis=0, keepdims=True)
  area = motion.convex_hull_area(points)
  return centred / np.sqrt(area) if area > 0 else centred


def pose_distance(a: np.ndarray, b: np.ndarray) -> float:
  """Sum of squared differences of the normalised poses of two (N, 2) point sets."""
  return float(np.sum((normalized_pose(a) - normalized_pose(b)) ** 2))


def best_frame(source_points: np.ndarray,
               driving_points: Sequence[np.ndarray | None]) -> int:
  """Index of the driving frame whose pose is nearest the source's.

  Frames without points (no face found) are skipped; 0 when no frame has points.
  """
  distances = [np.inf if p is None else pose_distance(source_points, p) for p in driving_points]
  if not distances or not np.isfinite(min(distances)):
    return 0
  return int(np.argmin(distances))


def face_landmarks(frames: Sequence[np.ndarray], detector,
                   batch_size: int = 8) -> list[np.ndarray | None]:
  """The (5, 2) landmarks of each (H, W, 3) frame's most probable face, or None."""
  out = []
  for start in range(0, len(frames), batch_size):
    for _, probs, landmarks in detector.detect_batch(np.stack(frames[start:start + batch_size])):
      out.append(landmarks[0] if len(probs) else None)
  return out
