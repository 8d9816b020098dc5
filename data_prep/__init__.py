"""Command-line data preparation on top of the library: `python -m data_prep.<step>`.

`prepare` (face videos -> cropped frames -> ArrayRecord shards), `synthetic` (rendered synthetic
heads -> shards), `add_geometry` (precomputed Unsup3D depth and normal), `tfds_dataset` (a TFDS
build of the shards), `astronaut_clips` (tiny face clips for tests and demos). The reading,
cropping and shard writing they share live in the package (`g3fa_jax.media`, `g3fa_jax.data`).
"""
