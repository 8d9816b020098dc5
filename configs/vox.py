"""The official G3FA recipe on VoxCeleb-style 256x256 face videos (`config/vox-256.yaml`).

Where the official code and the paper differ, this config follows the code: Adam betas
(0.5, 0.999), ensemble weights 1 : 0.25 : 0.25 normalised, LSGAN losses, and the generated frame's
depth and normal computed from a detached image (`train.geometry_mode='detached'`). The paper's
settings are `configs/paper.py`.

Every field can be overridden on the command line, e.g.
  python run_train.py --config=configs/vox.py --workdir=runs/vox --config.batch_size=64
  python run_eval.py --config=configs/vox.py --checkpoint=runs/vox/checkpoints \
      --config.eval.max_videos=10
"""

import ml_collections

from g3fa_jax import data as data_lib
from g3fa_jax import model_config
from g3fa_jax.evaluation import config as eval_config_lib


def get_config() -> ml_collections.ConfigDict:
  config = model_config.default_config()
  # What run_train.py runs: 'train' (g3fa_jax.train.trainer) or 'synthetic_demo'
  # (g3fa_jax.demo.job: synthetic data, inverse renderer, training, evaluation and a video).
  config.job = 'train'
  config.seed = 0
  # Global batch over all devices and hosts; `train.batch_size` is the same field.
  config.batch_size = 32

  config.train = ml_collections.ConfigDict({
      'batch_size': config.get_ref('batch_size'),
      'num_epochs': 200,
      # Steps per epoch; -1: the training set's size (videos x num_repeats) // batch_size.
      'steps_per_epoch': -1,
      # Total steps; -1: num_epochs * steps_per_epoch.
      'num_train_steps': -1,
      # The learning rate of every network is multiplied by 0.1 at these epochs.
      'epoch_milestones': (60, 90),
      'lr_generator': 2e-4,
      'lr_kp_detector': 2e-4,
      'lr_discriminator': 2e-4,
      'adam_b1': 0.5,
      'adam_b2': 0.999,
      'adam_eps': 1e-8,
      'loss_weights': {
          'generator_gan': 1.0,
          'discriminator_gan': 1.0,
          'feature_matching': (10.0, 10.0, 10.0, 10.0),
          'perceptual': (10.0, 10.0, 10.0, 10.0, 10.0),
          'equivariance_value': 10.0,
          'equivariance_jacobian': 10.0,
          # g3fa-jax option (not in the official recipe): weight of a plain pixel L1 between the
          # generated and driving frames; helps where VGG19 has no ImageNet weights.
          'pixel_l1': 0.0,
          # g3fa-jax option: weight of an L1 between the source warped by the dense motion (the
          # generator's 'deformed' output) and the driving frame; trains the motion directly.
          'warped_l1': 0.0,
          # g3fa-jax option: weight of each keypoint's local warp L1 (g3fa_jax/losses/
          # local_motion.py): the source warped by one keypoint's affine motion against the
          # driving frame in a window around the keypoint, bypassing the dense motion's mask, so
          # the keypoints learn to track even while the mask sits on zero motion.
          'local_motion': 0.0,
          # g3fa-jax option: weight of the keypoint separation loss (g3fa_jax/losses/
          # keypoint_separation.py): each pair of keypoints penalised by a Gaussian of their
          # distance (keypoint_separation_sigma), against keypoints that all sit in one place.
          'keypoint_separation': 0.0,
      },
      # Variance of the local_motion windows, in [-1, 1] units, and its image pyramid (a tuple, so
      # that --config.train.local_motion_scales='(1, 0.5, 0.25)' can override it).
      'local_motion_variance': 0.01,
      'local_motion_scales': (1.0,),
      # Standard deviation in pixels of the high-pass applied to both frames before the
      # local_motion L1 (0: the plain frames): shading that stays with the light, not with the
      # face, pulls the plain L1 towards too little motion (g3fa_jax/losses/local_motion.py).
      'local_motion_highpass': 0.0,
      # Distance (in [-1, 1] units) below which the keypoint_separation loss pushes two apart.
      'keypoint_separation_sigma': 0.1,
      # g3fa-jax option: for this many first steps the dense motion's zero-motion channel gets no
      # mask weight (its logit -20), so the warp must use the keypoints' motions while they are
      # still poor; without it the mask's softmax settles on zero motion within tens of steps and
      # never leaves it on small or synthetic data (docs/synthetic_training.md).
      'zero_motion_warmup_steps': 0,
      # Random thin-plate-spline warp of the equivariance losses.
      'transform_params': {'sigma_affine': 0.05, 'sigma_tps': 0.005, 'points_tps': 5},
      # Image pyramid of the perceptual loss.
      'scales': (1.0, 0.5, 0.25, 0.125),
      # 'detached' (official code): depth/normal of a stop-gradient generated frame;
      # 'differentiable' (paper): gradients flow through the frozen Unsup3D into the generator.
      'geometry_mode': 'detached',
      # 'float32' or 'bfloat16' (activations and matmuls; parameters and optimiser stay float32).
      'compute_dtype': 'float32',
      'checkpoint_every_steps': 2000,
      'keep_checkpoints': 3,
      'async_checkpointing': True,
      'log_every_steps': 50,
      'image_summary_every_steps': 1000,
  })

  # Input pipeline (g3fa_jax.data): data_dir, split, id_sampling, distinct_frames, worker_count,
  # worker_buffer_size, augmentation (official colour jitter 0.1, no flips).
  config.data = data_lib.data_config()
  # 'shards': ArrayRecord shards written by `python -m data_prep.prepare` (data_dir);
  # 'toy': in-memory moving ellipses (g3fa_jax.data.toy), a pure function of (seed, step), for
  # tests and smoke runs.
  config.data.name = 'shards'
  config.data.data_dir = 'data/vox'
  # Official `num_repeats`: an epoch is num_repeats passes over the clips.
  config.data.num_repeats = 1
  config.data.worker_count = 8
  # Toy source only: number of distinct clips.
  config.data.toy_num_videos = 64
  # Toy source only: this training step's batch is NaN (tests of the non-finite guard).
  config.data.toy_nan_step = -1

  config.pretrained = ml_collections.ConfigDict({
      # Orbax checkpoints written by `python -m g3fa_jax.convert unsup3d|vgg19 ...`.
      'unsup3d': 'checkpoints/unsup3d',
      'vgg19': 'checkpoints/vgg19',
      # True: random Unsup3D and VGG19 weights (tests and offline demos only; says so at start).
      'use_random_weights': False,
  })

  # Evaluation (run_eval.py; g3fa_jax.evaluation): protocols, batch size, pairs, metric weights.
  config.eval = eval_config_lib.eval_config()
  return config
