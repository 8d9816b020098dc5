"""Evaluation settings: the `eval` section of a run config (`configs/vox.py` takes these defaults;
`python run_eval.py --config.eval.<field>=<value>` overrides any of them)."""

from __future__ import annotations

import ml_collections


def eval_config() -> ml_collections.ConfigDict:
  """Defaults of `config.eval`."""
  c = ml_collections.ConfigDict()
  c.split = 'test'
  c.batch_size = 16               # frames per generator / metric batch
  c.protocols = 'same,cross'      # which tables to compute
  c.max_videos = -1               # same-identity: first N test videos (-1: all)
  c.max_frames = -1               # frames per video, both protocols (-1: all)
  c.seed = 0                      # cross-identity pairs drawn from this seed ...
  c.num_pairs = 100               # ... this many, unless a pair list is given
  c.pairs_file = ''               # CSV of `source,driving` clip keys (header optional)
  # 'relative' (FOMM's animation: driving motion relative to its first frame, scaled by the
  # keypoint hulls' sizes) or 'absolute' (the driving keypoints as they are).
  c.cross_motion = 'relative'
  c.lpips_nets = 'alex,vgg'       # LPIPS variants; the first is the table's LPIPS column
  c.csim_alignment = 'mtcnn'      # 'mtcnn' (5-point ArcFace alignment) or 'resize'
  c.num_sample_videos = 4         # sample grids per protocol
  c.num_sample_frames = 5         # frames per sample grid
  # Converted metric networks (python -m g3fa_jax.convert ...): '' means <weights_dir>/<name>.
  c.weights_dir = 'checkpoints'
  c.lpips_alex = ''
  c.lpips_vgg = ''
  c.inception = ''
  c.arcface = ''
  return c
