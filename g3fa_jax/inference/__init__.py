"""Inference API for notebooks: keypoints, reconstruction, animation, depth and normals."""
