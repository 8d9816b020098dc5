"""Converters from PyTorch checkpoints (official G3FA, Unsup3D, ...) to Flax variables."""
