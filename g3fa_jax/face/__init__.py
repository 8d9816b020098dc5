"""Face detection: MTCNN boxes, probabilities and 5 landmarks (`detect_faces`)."""

from g3fa_jax.face.mtcnn import MTCNN, detect_faces

__all__ = ['MTCNN', 'detect_faces']
