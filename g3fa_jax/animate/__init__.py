"""Animation for practitioners: a portrait driven by a video, as a CLI and a Python API.

  python -m g3fa_jax.animate --checkpoint DIR --source face.jpg --driving video.mp4 --out out.mp4

`video` (reading images and videos through `g3fa_jax.media`, writing mp4 with the driving
audio), `crop` (face crops and paste-back), `best_frame`, `side_by_side`, `pipeline` (the whole
file-to-file job the CLI runs). The relative motion itself is `g3fa_jax.inference.motion`.
"""
