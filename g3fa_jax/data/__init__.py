"""Input pipeline: prepared ArrayRecord shards of face clips -> grain batches of frame pairs."""

from g3fa_jax.data.pipeline import data_config, dataset_from_config, make_pair_dataset

__all__ = ['data_config', 'dataset_from_config', 'make_pair_dataset']
