"""MTCNN face detector: finds the face in a real photograph, with landmarks on it; frames of
mixed sizes share a few compiled programs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from g3fa_jax.face import mtcnn

skimage_data = pytest.importorskip('skimage.data')

# facenet-pytorch 2.6.0 `detect_face` on skimage's astronaut (same weights), for regression.
REFERENCE_BOX = np.array([181.0514, 62.15613, 267.7473, 172.05017], np.float32)
REFERENCE_LANDMARKS = np.array([[205.0109, 101.7275], [246.7626, 103.7141], [224.6714, 128.9650],
                                [201.7161, 139.2462], [245.2655, 141.8570]], np.float32)


@pytest.fixture(scope='module')
def detector() -> mtcnn.MTCNN:
  return mtcnn.default_detector()


def test_astronaut_face_box_and_landmarks(detector):
  image = skimage_data.astronaut()  # 512x512 RGB, one face at about x 180-270, y 60-170
  boxes, probs, landmarks = mtcnn.detect_faces(image)
  assert boxes.shape == (1, 4) and probs.shape == (1,) and landmarks.shape == (1, 5, 2)
  assert probs[0] > 0.99
  x0, y0, x1, y1 = boxes[0]
  assert 160 < x0 < 200 and 240 < x1 < 290 and 40 < y0 < 80 and 150 < y1 < 190
  (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = landmarks[0]
  assert np.all((landmarks[0, :, 0] > x0) & (landmarks[0, :, 0] < x1))
  assert np.all((landmarks[0, :, 1] > y0) & (landmarks[0, :, 1] < y1))
  assert lex < nx < rex and lmx < nx < rmx           # eyes and mouth corners either side of the nose
  assert max(ley, rey) < ny < min(lmy, rmy)          # eyes above the nose above the mouth
  np.testing.assert_allclose(boxes[0], REFERENCE_BOX, atol=0.05)
  np.testing.assert_allclose(landmarks[0], REFERENCE_LANDMARKS, atol=0.05)


def test_float_input_and_batch_agree(detector):
  image = skimage_data.astronaut()[::2, ::2]
  (b_uint8, p_uint8, _), (b_float, p_float, _) = detector.detect_batch(
      np.stack([image, image]))
  np.testing.assert_allclose(b_uint8, b_float, atol=1e-3)
  b_f01, _, _ = detector(image.astype(np.float32) / 255.0)
  np.testing.assert_allclose(b_f01, b_uint8, atol=1e-2)
  assert len(p_uint8) == 1


def test_no_face_in_flat_image(detector):
  boxes, probs, landmarks = detector(np.full((96, 128, 3), 127, np.uint8))
  assert boxes.shape == (0, 4) and probs.shape == (0,) and landmarks.shape == (0, 5, 2)


def test_area_resize_is_adaptive_average():
  x = np.arange(5 * 7 * 1, dtype=np.float32).reshape(5, 7, 1)
  out = mtcnn.area_resize(x, 2, 3)
  # rows [0:3] and [2:5]; columns [0:3], [2:5], [4:7]
  expected = [[x[r0:r1, c0:c1].mean() for c0, c1 in ((0, 3), (2, 5), (4, 7))]
              for r0, r1 in ((0, 3), (2, 5))]
  np.testing.assert_allclose(out[..., 0], expected, rtol=1e-6)


def test_converter_matches_shipped_weights(tmp_path):
  torch = pytest.importorskip('torch')
  from g3fa_jax.convert import mtcnn as convert
  with np.load(mtcnn.DEFAULT_WEIGHTS) as data:
    shipped = {k: data[k] for k in data.files}
  for net in convert.NETS:  # rebuild PyTorch-layout state dicts, then convert them back
    state = {}
    for key, value in shipped.items():
      name, layer, leaf = key.split('/')
      if name != net:
        continue
      if leaf == 'alpha':
        state[f'{layer}.weight'] = value
      elif leaf == 'bias':
        state[f'{layer}.bias'] = value
      else:
        state[f'{layer}.weight'] = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
               tmp_path / f'{net}.pt')
  converted = convert.read_weights_dir(tmp_path)
  assert sorted(converted) == sorted(shipped)
  for key, value in shipped.items():
    np.testing.assert_array_equal(converted[key], value)


def test_frames_of_mixed_sizes_share_a_few_compiled_programs():
  """P-Net runs on zero-padded squares of a few sides and power-of-two batches: frames of 5
  sizes and 2 batch sizes compile one program per (side, batch), not one per pyramid level of
  every size, and find the same faces as unpadded runs."""
  detector = mtcnn.MTCNN()
  face = skimage_data.astronaut()[30:190, 150:290]  # (160, 140): the face fills most of it
  sizes = ((60, 60), (64, 90), (75, 75), (90, 64), (100, 120))
  level_shapes = set()
  for height, width in sizes:
    image = np.asarray(Image.fromarray(face).resize((width, height)))
    for batch in (1, 3):
      detector.detect_batch(np.stack([image] * batch))
      level_shapes |= {(batch, int(height * s + 1), int(width * s + 1))
                       for s in detector._pyramid(height, width)}  # pylint: disable=protected-access
  sides = {mtcnn.size_bucket(max(h, w)) for _, h, w in level_shapes}
  compiled = detector._apply['pnet']._cache_size()  # pylint: disable=protected-access
  assert compiled == 2 * len(sides) and compiled < len(level_shapes) / 2, (
      compiled, sides, len(level_shapes))
  image = np.asarray(Image.fromarray(face).resize((90, 64)))
  padded = detector(image)
  exact = mtcnn.MTCNN(pad_shapes=False)(image)
  assert len(padded[0]) == len(exact[0]) == 1
  for a, b in zip(padded, exact):
    np.testing.assert_allclose(a, b, atol=1e-4)
