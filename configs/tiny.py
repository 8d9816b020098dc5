"""A tiny G3FA for tests and smoke runs: reduced networks, 64x64 frames, toy data and RANDOM
Unsup3D / VGG19 weights, the perceptual loss to relu3_1 only. Trains on a CPU at under a second
per step; its results mean nothing.

  python run_train.py --config=configs/tiny.py --workdir=/tmp/g3fa_tiny --config.train.num_train_steps=20
"""

import ml_collections

from g3fa_jax import model_config


def get_config() -> ml_collections.ConfigDict:
  config = model_config.load_base(__file__, 'vox.py')
  # The reduced model of the parity fixture (tests/fixtures/README.md), with a narrower generator
  # (feature width 64, SPADE hidden width 32; the fixture's: 256 and 128), where the profile
  # (benchmarks/profile_step.py) puts the step's time.
  model = config.model
  model.kp_detector_params.update(block_expansion=8, max_features=64, num_blocks=3)
  model.generator_params.update(block_expansion=16, max_features=64, decoder_hidden_channels=32)
  model.generator_params.render_params.output_channels = 64  # = the generator's feature width.
  model.generator_params.dense_motion_params.update(block_expansion=8, max_features=64,
                                                    num_blocks=3)
  model.generator_params.render_params.update(simpled_channel_rgb=32, simpled_channel_sigma=128,
                                              hidden_size=32)
  model.discriminator_params.update(block_expansion=8, max_features=64)
  config.unsup3d.update(nf=16, zdim=32)
  config.image_size = 64

  config.batch_size = 2
  config.train.num_epochs = 10
  config.train.steps_per_epoch = 10
  config.train.epoch_milestones = (6, 9)
  # relu5_1 of VGG19 needs 16x16 inputs: no 1/8 pyramid level on 64x64 frames.
  config.train.scales = (1.0, 0.5, 0.25)
  # VGG19 to relu3_1 only, as in configs/synthetic.py: its relu4_1 and relu5_1 were two thirds of
  # the step (1.9 s -> 0.65 s on 2 cores at the tests' XLA level 0) and mean nothing with random
  # weights. The five-map loss is tested in-process (tests/test_losses.py, test_train_step.py).
  config.train.loss_weights.perceptual = (10.0, 10.0, 10.0, 0.0, 0.0)
  config.train.checkpoint_every_steps = 10
  config.train.keep_checkpoints = 2
  config.train.log_every_steps = 5
  config.train.image_summary_every_steps = 50

  config.data.name = 'toy'
  config.data.toy_num_videos = 16
  config.data.worker_count = 0
  config.pretrained.use_random_weights = True
  return config
