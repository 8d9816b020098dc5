"""Media in: frames of video files, frame folders and images, and square face-crop geometry.

`video_io` (decode a video file or a folder of frame images into (H, W, 3) uint8 RGB frames as
displayed, write an mp4), `crop` (a stable square face box per clip, crop and resize) and `paths`
(output paths checked before any work). Both the data preparation (`data_prep`) and the
animation CLI (`g3fa_jax.animate`) read their inputs here.
"""
