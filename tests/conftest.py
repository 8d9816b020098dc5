"""Shared test fixtures: the official parity fixture and float32-exact JAX settings."""

from __future__ import annotations

import json
import os
import pathlib

import jax
import numpy as np
import pytest

jax.config.update('jax_default_matmul_precision', 'highest')

FIXTURE_PATH = pathlib.Path(__file__).parent / 'fixtures' / 'official_small_s0.npz'


@pytest.fixture(scope='session')
def official_fixture() -> dict[str, np.ndarray]:
  """Every array of the official parity fixture, by key (NCHW as stored)."""
  with np.load(FIXTURE_PATH) as data:
    return {key: data[key] for key in data.files}


@pytest.fixture(scope='session')
def fixture_settings(official_fixture) -> dict:
  """The fixture's JSON config: model_params, loss_weights, transform_params, unsup3d, ..."""
  return json.loads(str(official_fixture['config']))


@pytest.fixture(scope='session')
def fixture_model_config(fixture_settings):
  """The fixture's reduced model as this project's (official-schema) model config."""
  from g3fa_jax import model_config
  return model_config.model_config_from_official(fixture_settings['model_params'])


def fixture_state_dict(npz: dict[str, np.ndarray], model_name: str) -> dict[str, np.ndarray]:
  """The official state dict of one model (`kp_detector`, `generator`, `discriminator`, ...)."""
  prefix = f'param/{model_name}/'
  return {k[len(prefix):]: v for k, v in npz.items() if k.startswith(prefix)}


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
  return np.moveaxis(x, 1, -1)


def flatten_tree(tree, prefix: str = '') -> dict[str, np.ndarray]:
  """A nested dict / list of arrays as {'/a/0/b': array}, for comparing whole states."""
  out = {}
  if isinstance(tree, dict):
    for k, v in tree.items():
      out.update(flatten_tree(v, f'{prefix}/{k}'))
  elif isinstance(tree, (list, tuple)):
    for i, v in enumerate(tree):
      out.update(flatten_tree(v, f'{prefix}/{i}'))
  else:
    out[prefix] = np.asarray(tree)
  return out
