"""Inference API for notebooks: keypoints, reconstruction, animation, depth and normals.

`animator.Animator` (keypoint detector + generator), `inverse_renderer.InverseRenderer` (Unsup3D
depth and normals), both restored from orbax checkpoints; `motion` (First Order Motion Model's
relative motion transfer, used by `Animator.animate` and by the evaluation protocols).
"""
