"""CSIM: cosine similarity of ArcFace identity embeddings (source face vs generated face).

Faces are aligned as insightface aligns them for ArcFace: the 5 MTCNN landmarks (eyes, nose,
mouth corners) are mapped onto insightface's 112x112 template by the least-squares similarity
transform (Umeyama), and the image is warped with bilinear sampling and zero borders (OpenCV
`warpAffine` semantics: pixel centres at integer coordinates). A frame without a detected face
falls back to the whole frame resized to 112x112 (the frames are face crops already); the number
of fallbacks is reported beside the score.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import ndimage

from g3fa_jax.metrics import arcface
from g3fa_jax.ops import resize

# insightface `face_align.arcface_dst`: landmark positions in the 112x112 aligned face.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
  """Least-squares similarity (rotation, uniform scale, translation) mapping src onto dst.

  Umeyama (1991), as `skimage.transform.SimilarityTransform.estimate`.

  Args:
    src, dst: (N, 2) corresponding points (x, y).

  Returns:
    (3, 3) homogeneous matrix M with dst ~ M [x, y, 1].
  """
  src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
  n, dim = src.shape
  mu_s, mu_d = src.mean(0), dst.mean(0)
  src_c, dst_c = src - mu_s, dst - mu_d
  a = dst_c.T @ src_c / n
  d = np.ones(dim)
  if np.linalg.det(a) < 0:
    d[-1] = -1
  u, s, vt = np.linalg.svd(a)
  t = np.eye(dim + 1)
  t[:dim, :dim] = u @ np.diag(d) @ vt
  scale = (s @ d) / src_c.var(axis=0).sum()
  t[:dim, dim] = mu_d - scale * (t[:dim, :dim] @ mu_s)
  t[:dim, :dim] *= scale
  return t


def warp_affine(image: jax.Array, inverse: jax.Array, size: int) -> jax.Array:
  """Bilinear warp with zero borders: out[y, x] = image at inverse @ [x, y, 1].

  Args:
    image: (H, W, C).
    inverse: (3, 3) map from output pixel (x, y) to input pixel coordinates.
    size: output side.

  Returns:
    (size, size, C).
  """
  ys, xs = jnp.meshgrid(jnp.arange(size, dtype=jnp.float32), jnp.arange(size, dtype=jnp.float32),
                        indexing='ij')
  src = jnp.einsum('ij,jhw->ihw', inverse[:2].astype(jnp.float32),
                   jnp.stack([xs, ys, jnp.ones_like(xs)]))
  def channel(c):
    return ndimage.map_coordinates(c, [src[1], src[0]], order=1, mode='constant', cval=0.0)
  return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)


def alignment_matrices(landmarks: list[np.ndarray | None], image_size: int) -> np.ndarray:
  """Per image, the (3, 3) output->input map of its ArcFace alignment.

  `landmarks[i]` is (5, 2) pixel (x, y) or None (no face: the whole frame is resized instead,
  which is also an affine map).
  """
  out = []
  for points in landmarks:
    if points is None:
      s = image_size / arcface.INPUT_SIZE
      # Resize as a map of pixel centres: x_in = (x_out + 0.5) s - 0.5.
      out.append(np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1]]))
    else:
      out.append(np.linalg.inv(similarity_transform(points, ARCFACE_TEMPLATE)))
  return np.stack(out).astype(np.float32)


@jax.jit
def align_faces(images: jax.Array, inverse_maps: jax.Array) -> jax.Array:
  """(B, H, W, 3) images and (B, 3, 3) maps -> aligned faces (B, 112, 112, 3)."""
  return jax.vmap(lambda im, m: warp_affine(im, m, arcface.INPUT_SIZE))(images, inverse_maps)


def resize_faces(images: jax.Array) -> jax.Array:
  """The no-alignment variant: whole frames resized to 112x112 (bilinear)."""
  return resize.resize_bilinear(images, (arcface.INPUT_SIZE, arcface.INPUT_SIZE),
                                align_corners=False)


def cosine_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
  """Row-wise cosine similarity of (B, d) embeddings -> (B,) in [-1, 1]."""
  a = a / jnp.maximum(jnp.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
  b = b / jnp.maximum(jnp.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
  return jnp.sum(a * b, axis=-1)
