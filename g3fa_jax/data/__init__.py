"""Data: the record format (`records`), shards and their index (`shards`, `index`), and the input
pipeline: prepared ArrayRecord shards of face clips -> grain batches of frame pairs (`pipeline`);
`toy` is an in-memory source for tests and smoke runs."""

from g3fa_jax.data.pipeline import data_config, dataset_from_config, make_pair_dataset

__all__ = ['data_config', 'dataset_from_config', 'make_pair_dataset']
