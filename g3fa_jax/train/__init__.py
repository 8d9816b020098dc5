"""Training: train state, optimisers, the jitted step, sharding, pretrained inputs and the loop."""
