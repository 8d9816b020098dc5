"""Procedural talking heads with exact depth and normal maps, sphere-traced in JAX.

Data flow: `identities` (who: shape, colours, texture) + `pose` (head rotations and motion
curves) -> `clips` (one clip's timelines: pose, mouth, blinks, gaze, light, background) ->
`sdf` (the head's signed distance field) + `shading` (materials, textures, light) under the
`camera` -> `render` (image, depth, normal, mask per frame) -> `dataset` (records of the
project's data format) -> `writer` (resumable ArrayRecord shards; `python -m data_prep.synthetic`
is its command line).

  from g3fa_jax.synthetic import clips, render
  clip = clips.make_clip(seed=0, clip_index=3, identity_index=1, num_frames=32)
  out = render.render_clip(clip, size=64)   # image, depth, normal, mask: (32, 64, 64, C)
"""
