"""The main job (configs/synthetic.py) at a GPU's scale: the official networks (their widths and
depths, which need frames of 128x128 or more: the keypoint detector's five-level hourglass on a
quarter of the frame), 16 pairs a step and ten times the steps, on the built-in synthetic heads
rendered at 128x128. It asks what the 2-core CPU recipe cannot: whether G3FA's full networks,
trained for longer, beat the warp that the reduced ones settle on (docs/synthetic_training.md).
Same outputs as the main job (WORKDIR/eval.json, learning_curve.png, animation.mp4, ...):

  python run_train.py --config=configs/synthetic_gpu.py --workdir=runs/synthetic_gpu

Not run on a GPU yet (none was lent to the sessions that wrote it); on a 2-core CPU its step is
far too slow to be useful (README, "Training that learns").
"""

import ml_collections

from g3fa_jax import model_config


def get_config() -> ml_collections.ConfigDict:
  config = model_config.load_base(__file__, 'synthetic.py')
  official = model_config.vox256_model_config()
  model = config.model
  widths = ('block_expansion', 'max_features', 'num_blocks')
  model.kp_detector_params.update({k: official.kp_detector_params[k] for k in widths})
  model.generator_params.dense_motion_params.update(
      {k: official.generator_params.dense_motion_params[k] for k in widths})
  model.generator_params.update(
      {k: official.generator_params[k]
       for k in ('block_expansion', 'max_features', 'decoder_hidden_channels')})
  model.generator_params.render_params.update(
      {k: official.generator_params.render_params[k]
       for k in ('simpled_channel_rgb', 'simpled_channel_sigma', 'hidden_size', 'output_channels')})
  model.discriminator_params.update(
      {k: official.discriminator_params[k] for k in ('block_expansion', 'max_features')})
  # The options that make the reduced job learn at all stay on (configs/synthetic.py): exact
  # warps at zero motion, the blend with the warped source, the pixel and warp L1s, the local
  # motion and keypoint separation losses and the motion warm-up.

  config.image_size = 128
  config.batch_size = 16
  train = config.train
  # 6000 steps of 16 pairs (the CPU job: 600 of 4), the learning rate x0.1 after 40 % and 80 %.
  train.num_epochs = 100
  train.steps_per_epoch = 60
  train.epoch_milestones = (40, 80)
  train.checkpoint_every_steps = 600
  train.log_every_steps = 50
  train.image_summary_every_steps = 600
  return config
