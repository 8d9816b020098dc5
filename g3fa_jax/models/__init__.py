"""Flax modules of G3FA (blocks, keypoint detector, dense motion, volume renderer, SPADE decoder,
generator, spectral-norm discriminators, Unsup3D, VGG19); `networks` builds them from a config."""
