"""Array operations with PyTorch-exact semantics (NHWC): sampling, resizing, anti-aliasing."""
