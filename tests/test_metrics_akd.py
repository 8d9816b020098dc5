"""AKD: landmark distance by its formula, missing faces, and the shipped MTCNN on a real face."""

from __future__ import annotations

import numpy as np
import pytest

from g3fa_jax.metrics import akd


def _fake_detector(marks_per_image):
  def detect(images):
    out = []
    for marks in marks_per_image[:len(images)]:
      if marks is None:
        out.append((np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2))))
      else:
        marks = np.asarray(marks, np.float32)
        probs = np.linspace(0.9, 0.99, len(marks)).astype(np.float32)
        out.append((np.zeros((len(marks), 4)), probs, marks))
    return out
  return detect


def test_keypoint_distance_formula():
  rng = np.random.default_rng(0)
  a = rng.uniform(0, 256, size=(3, 5, 2))
  b = rng.uniform(0, 256, size=(3, 5, 2))
  expected = [np.mean([np.hypot(*(a[i, k] - b[i, k])) for k in range(5)]) for i in range(3)]
  np.testing.assert_allclose(akd.keypoint_distance(a, b), expected, rtol=1e-12)


def test_best_landmarks_takes_most_confident_face_and_marks_missing():
  first, second = np.zeros((5, 2)), np.ones((5, 2)) * 7
  detector = _fake_detector([[first, second], None])
  marks = akd.best_landmarks(np.zeros((2, 8, 8, 3), np.float32), detector)
  np.testing.assert_array_equal(marks[0], second)  # probs increase: the second is best
  assert np.isnan(marks[1]).all()
  distance = akd.keypoint_distance(marks, np.zeros((2, 5, 2)))
  assert distance[0] == pytest.approx(7 * np.sqrt(2)) and np.isnan(distance[1])


def test_shipped_mtcnn_landmarks_move_with_the_face():
  data = pytest.importorskip('skimage.data')
  image = data.astronaut()[:320, 80:400].astype(np.float32) / 255.0  # face near the centre
  shifted = np.zeros_like(image)
  shifted[:, 8:] = image[:, :-8]  # the same face 8 pixels to the right
  marks = akd.best_landmarks(np.stack([image, shifted]), akd.default_batch_detector())
  assert not np.isnan(marks).any()
  assert akd.keypoint_distance(marks[:1], marks[1:])[0] == pytest.approx(8.0, abs=1.0)
