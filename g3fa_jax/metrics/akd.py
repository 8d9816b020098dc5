"""AKD: average distance, in pixels, between the facial landmarks of generated and driving frames.

Landmarks are MTCNN's five points (eyes, nose, mouth corners) from the same detector as data_prep
(`g3fa_jax.face`), the most confident face of each frame. A frame counts only when a face is found
in both images; the share of frames where one is missing is reported beside the AKD (it is the
"missing keypoint rate" of FOMM's evaluation).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# images (B, H, W, 3) in [0, 1] -> per image (boxes, probs, landmarks (N, 5, 2)), best first.
BatchDetector = Callable[[np.ndarray], Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]]
# The command that writes the shipped MTCNN weights (when they are absent from a checkout).
MAKE_COMMAND = ('pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fnp && python -m '
                'g3fa_jax.convert.mtcnn --wheel /tmp/fnp/facenet_pytorch-2.6.0-py3-none-any.whl '
                '--out g3fa_jax/face/mtcnn_weights.npz')


def default_batch_detector() -> BatchDetector:
  """The shipped MTCNN (`g3fa_jax.face.mtcnn.default_detector().detect_batch`)."""
  from g3fa_jax.face import mtcnn  # pylint: disable=g-import-not-at-top
  return mtcnn.default_detector().detect_batch


def best_landmarks(images: np.ndarray, detector: BatchDetector) -> np.ndarray:
  """Five landmarks of the most confident face per image.

  Args:
    images: (B, H, W, 3) in [0, 1].
    detector: see `BatchDetector`.

  Returns:
    (B, 5, 2) float32 pixel (x, y); NaN where no face was found.
  """
  out = np.full((len(images), 5, 2), np.nan, np.float32)
  for i, (_, probs, landmarks) in enumerate(detector(np.asarray(images, np.float32))):
    if len(probs):
      out[i] = landmarks[int(np.argmax(probs))]
  return out


def keypoint_distance(landmarks_a: np.ndarray, landmarks_b: np.ndarray) -> np.ndarray:
  """Mean Euclidean distance over the landmarks, per frame.

  Args:
    landmarks_a, landmarks_b: (B, K, 2) pixel coordinates; NaN rows mark a missing face.

  Returns:
    (B,) float64 distances in pixels; NaN where either face is missing.
  """
  d = np.linalg.norm(np.asarray(landmarks_a, np.float64) - np.asarray(landmarks_b, np.float64),
                     axis=-1)
  return d.mean(axis=-1)
