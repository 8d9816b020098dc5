"""The newcomer's main job: G3FA on built-in synthetic talking heads, on a 2-core CPU in about a
quarter of an hour. Needs no download, no dataset and no pretrained weights.

  python run_train.py --config=configs/synthetic.py --workdir=runs/synthetic

`config.job = 'synthetic_demo'` makes run_train.py run the whole job (`g3fa_jax.demo.job`), not
training alone. Steps (each cached in WORKDIR, so running again resumes): render the synthetic
clips into WORKDIR/data (`g3fa_jax.synthetic.writer`, what `python -m data_prep.synthetic` runs);
train the Unsup3D depth network briefly on their ground-truth depth (WORKDIR/unsup3d) so that the
depth and normal discriminators see meaningful maps; write RANDOM VGG19 weights
(WORKDIR/vgg19_random: the perceptual loss is then only a fixed random-feature loss); train a
reduced G3FA on 64x64 frames (WORKDIR/checkpoints, WORKDIR/tensorboard), measuring the held-out
reconstruction L1 at step 0 and at each checkpoint (WORKDIR/learning_curve.json and .png, with the
no-motion baseline); then WORKDIR/eval.json (final L1, baseline, their ratio, how the keypoints
follow the head pose) and an animation of a held-out identity driven by the held-out clip whose
head turns the most (WORKDIR/animation.mp4 and its contact sheet WORKDIR/animation.png; its
inputs WORKDIR/animation_source.png and animation_driving.mp4 for `python -m g3fa_jax.animate`,
whose command eval.json's animate_command gives).
"""

import ml_collections

from g3fa_jax import model_config


def get_config() -> ml_collections.ConfigDict:
  # Reduced networks, 64x64 frames (configs/tiny.py).
  config = model_config.load_base(__file__, 'tiny.py')
  config.job = 'synthetic_demo'
  config.image_size = 64
  config.batch_size = 4
  # Narrower than the parity fixture's generator where the profile (benchmarks/profile_step.py)
  # put the time: the SPADE decoder's hidden convolutions at 64x64 and the 256-wide features.
  # tiny.py has the same widths; set here too, so that the main job does not follow the tests'.
  generator = config.model.generator_params
  generator.update(block_expansion=16, max_features=64, decoder_hidden_channels=32)
  generator.render_params.output_channels = 64  # = the generator's feature width.
  # Two g3fa-jax options (docs/synthetic_training.md). The official warps, with
  # grid_sample's align_corners=False, are not an identity at zero motion: on 64x64 frames and a
  # 16x16 motion field they alone cost 0.059 held-out L1 against 0.030 for copying the source.
  generator.warp_align_corners = True
  # A SPADE decoder fed 16x16 features cannot render 64x64 detail in this budget (a 16x16 copy of
  # the driving frame itself, upsampled, scores 0.0305): the prediction blends the warped source
  # with the decoded frame by a predicted mask, so the decoder renders what the warp cannot.
  generator.blend_warped_source = True

  train = config.train
  # 600 steps of 4 pairs after the motion warm-up, the learning rate x0.1 after 240 and again
  # after 480 (the held-out L1 was flat from step 200 to 1000 in a 1000-step run).
  train.num_epochs = 10
  train.steps_per_epoch = 60
  train.num_train_steps = -1
  train.epoch_milestones = (4, 8)
  # Faster than the official 2e-4 and Adam b1 = 0.5 at this scale (benchmarks/diagnose_training.py).
  train.lr_generator = 1e-3
  train.lr_kp_detector = 1e-3
  train.adam_b1 = 0.9
  train.scales = (1.0, 0.5, 0.25)
  # VGG19 to relu3_1 only: random weights make its deep maps uninformative, and they cost most.
  train.loss_weights.perceptual = (10.0, 10.0, 10.0, 0.0, 0.0)
  # The pixel L1 (a g3fa-jax option) carries the reconstruction that random VGG features do not.
  train.loss_weights.pixel_l1 = 100.0
  # The source warped by the dense motion against the driving frame: trains the motion directly.
  train.loss_weights.warped_l1 = 100.0
  # Each keypoint's own motion judged around it (g3fa_jax/losses/local_motion.py), 10x the warped
  # source's weight as in the motion warm-up: keeps the keypoints tracking during G3FA's training.
  train.loss_weights.local_motion = 1000.0
  # Keypoints kept apart (g3fa_jax/losses/keypoint_separation.py), 10x warped_l1 as in the motion
  # warm-up: without it all 15 collapse onto one point within ~1 px and move as one.
  train.loss_weights.keypoint_separation = 1000.0
  # Keypoints anchored to the heads' facial landmarks (g3fa_jax/losses/landmark_anchor.py), as
  # demo.motion_warmup_landmarks in the warm-up; off: the job stays unsupervised (README).
  train.loss_weights.landmarks = 0.0
  train.keypoint_separation_sigma = 0.05
  # Each checkpoint adds a point to the learning curve (held-out L1).
  train.checkpoint_every_steps = 120
  train.keep_checkpoints = 2
  train.async_checkpointing = False
  train.log_every_steps = 10
  train.image_summary_every_steps = 100

  data = config.data
  data.name = 'shards'
  data.data_dir = ''  # '' -> WORKDIR/data (filled by g3fa_jax.demo.job.prepare).
  data.worker_count = 0
  data.read_threads = 1
  data.prefetch_batches = 2

  pretrained = config.pretrained
  pretrained.use_random_weights = False
  pretrained.unsup3d = ''  # '' -> WORKDIR/unsup3d (trained by the job).
  pretrained.vgg19 = ''  # '' -> WORKDIR/vgg19_random (RANDOM weights, written by the job).

  config.synthetic = ml_collections.ConfigDict({
      # The rendered heads' clips (g3fa_jax.synthetic.writer); frame size = config.image_size.
      'videos': 120,
      'frames': 32,
      # One identity per clip: with 6 clips per identity (20 identities, 2 held out) the
      # keypoints learnt to follow the training faces only (held-out keypoint gain -0.06 against
      # the true motion, +0.22 on training clips); with 120 they follow unseen ones too (README).
      'identities': -1,  # -1: one per clip; 0: videos // 6.
      'seed': 0,
      'workers': -1,
  })
  config.demo = ml_collections.ConfigDict({
      # The motion warm-up (g3fa_jax.demo.motion_warmup), before G3FA's training: the keypoint
      # detector and dense motion network alone on the warped source (~30x cheaper per step than
      # the full step) with each keypoint's local warp L1 (motion_warmup_local_motion, relative to
      # the warped source's L1), which trains the keypoints while the mask still sits on zero
      # motion. The mask leaves zero motion by itself, but when varies with the seed (after
      # 1250-2750 steps, or not within 3000; docs/synthetic_training.md), so the
      # warm-up runs until the warped source beats copying the source on the training pairs
      # (below motion_warmup_stop_below of it over the last motion_warmup_every steps, after at
      # least motion_warmup_min_steps), at most motion_warmup_steps steps.
      # motion_warmup_zero_motion_steps > 0 would also withhold the mask's zero-motion channel
      # for the first steps (fragile).
      'motion_warmup_steps': 6000,
      'motion_warmup_min_steps': 1000,
      'motion_warmup_stop_below': 0.93,
      'motion_warmup_every': 250,
      'motion_warmup_zero_motion_steps': 0,
      'motion_warmup_local_motion': 10.0,
      'motion_warmup_keypoint_separation': 10.0,
      # Weight of an L1 pulling the 15 keypoints onto the heads' facial landmarks (eyes, nose,
      # lips, chin, brows, cheeks; g3fa_jax.synthetic.landmarks) in the warm-up, relative to the
      # warped source's L1: the role a landmark detector would play for real faces.
      'motion_warmup_landmarks': 0.0,
      # Weight of a cross-entropy teaching the dense motion's mask, per cell, the candidate motion
      # (zero or a keypoint's) nearest the heads' TRUE motion (g3fa_jax.losses.mask_teacher), in
      # the warm-up, relative to the warped source's L1: the mask then leaves zero motion at once
      # and hands the face to the keypoints (docs/synthetic_training.md). 0: unsupervised.
      'motion_warmup_mask_teacher': 0.0,
      # The true motion those teachers use also opens the mouth (g3fa_jax.synthetic.flow.jaw_drop:
      # the lips part and the jaw drops with the clip's mouth opening), not only the head's rigid
      # motion, which leaves the mouth as the source has it.
      'truth_motion_mouth': False,
      # The inverse renderer: Unsup3D's depth net fitted to the ground-truth depth.
      'unsup3d_steps': 300,
      'unsup3d_batch_size': 16,
      'unsup3d_learning_rate': 1e-3,
      'unsup3d_frames_per_clip': 8,
      # Held-out evaluation: test clips (0: all) and driving frames per clip (0: all).
      'eval_clips': 0,
      'eval_frames': 8,
      # Frames of the animation video (0: the whole driving clip).
      'video_frames': 0,
      'video_fps': 15,
  })
  return config
