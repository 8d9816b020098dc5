"""Shared test fixtures: the official parity fixture, float32-exact JAX settings, and a tiny random
checkpoint with test-made clips for the animation, live and web-app tests."""

from __future__ import annotations

import fractions
import json
import os
import pathlib

# Before JAX starts: the tests compile far more than they compute (a few steps of each program),
# and much of XLA:CPU's compile time is LLVM's optimisation; at backend optimisation level 0 a
# test that compiles a training step takes about half the time (tests/test_train_step.py's three
# step tests: 164 s -> 87 s on 2 cores). A level already in XLA_FLAGS wins (`XLA_FLAGS=
# --xla_backend_optimization_level=2 python -m pytest` tests the programs users run).
from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top

TEST_XLA_FLAGS = ('--xla_backend_optimization_level=0',)
xla_flags.add_flags(TEST_XLA_FLAGS)


def subprocess_xla_flags(*flags: str) -> str:
  """XLA_FLAGS for a test's subprocess: `flags`, and the suite's compile settings (as above)."""
  names = {xla_flags.flag_name(f) for f in TEST_XLA_FLAGS}
  suite = [f for f in os.environ['XLA_FLAGS'].split() if xla_flags.flag_name(f) in names]
  return ' '.join([*flags, *suite])


import av  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update('jax_default_matmul_precision', 'highest')

# The files that take longest (seconds summed over their tests, `--durations=0` of the full
# suite on 2 cores, 2026-12-06), run first: with `-n 2 --dist loadfile` each file goes whole to
# the next free worker, and xdist's default order (most tests first) left the long training
# files, which have few tests, for last, where two of them ran side by side while the other
# worker sat idle. Longest first keeps both workers busy to the end.
LONGEST_FILES = ('test_train_run.py', 'test_train_resilience.py', 'test_train_sharding.py',
                 'test_synthetic_job.py', 'test_train_step.py', 'test_learning_options.py',
                 'test_animate_pipeline.py', 'test_step_setup.py', 'test_losses.py',
                 'test_synthetic.py', 'test_app.py')


def pytest_configure(config) -> None:
  if hasattr(config.option, 'loadscopereorder'):  # pytest-xdist: keep the order below.
    config.option.loadscopereorder = False


def pytest_collection_modifyitems(items) -> None:
  rank = {name: i for i, name in enumerate(LONGEST_FILES)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # Stable: file order kept.

FIXTURE_PATH = pathlib.Path(__file__).parent / 'fixtures' / 'official_small_s0.npz'
# Image size of the tiny random checkpoint (`checkpoints`).
TINY_SIZE = 64


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


def make_clip(path, num_frames: int, fps: int, audio_codec: str | None = 'aac',
              size: int = TINY_SIZE, sample_rate: int = 16000) -> pathlib.Path:
  """A clip of a moving square, with a 440 Hz tone of the video's length if audio_codec."""
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=fps)
    stream.width = stream.height = size
    stream.pix_fmt = 'yuv420p'
    audio = None
    if audio_codec:
      audio = container.add_stream(audio_codec, rate=sample_rate)
      audio.layout = 'mono'
    for i in range(num_frames):
      frame = np.full((size, size, 3), 40, np.uint8)
      frame[10:30, 8 + 2 * i:28 + 2 * i] = (220, 180, 150)
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode(None))
    if audio is not None:
      num = sample_rate * num_frames // fps
      tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(num) / sample_rate)
      sample_format = audio.codec_context.codec.audio_formats[0].name
      for start in range(0, num, 1024):
        chunk = tone[start:start + 1024]
        chunk = ((chunk * 32767).astype(np.int16) if sample_format.startswith('s16')
                 else chunk.astype(np.float32))[None]
        frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout='mono')
        frame.sample_rate, frame.pts = sample_rate, start
        container.mux(audio.encode(frame))
      container.mux(audio.encode(None))
  return pathlib.Path(path)


def describe(path) -> dict:
  """Decoded frame count, frame rate, frame size and audio (codec, seconds) of a video."""
  with av.open(str(path)) as container:
    stream = container.streams.video[0]
    info = {'fps': fractions.Fraction(stream.average_rate), 'size': (stream.height, stream.width),
            'audio': None}
    if container.streams.audio:
      a = container.streams.audio[0]
      info['audio'] = (a.codec_context.name, float(a.duration * a.time_base))
    info['frames'] = sum(1 for _ in container.decode(video=0))
  return info


@pytest.fixture(scope='module')
def tiny_config(fixture_model_config):
  """The fixture's reduced model at TINY_SIZE x TINY_SIZE, with a small Unsup3D."""
  from g3fa_jax import model_config
  config = model_config.default_config()
  config.model = fixture_model_config
  config.unsup3d.update(nf=16, zdim=32)
  config.image_size = TINY_SIZE
  return config


def random_variables(name: str, config, seed: int) -> dict:
  """Random variables of the right shapes, without running (or compiling) the network's init:
  PyTorch-like uniform(+-1/sqrt(fan_in)) params, unit BatchNorm statistics."""
  from g3fa_jax.models import networks
  rng = np.random.default_rng(seed)
  template = networks.variables_template(name, config)

  def leaf(path, spec):
    keys = [getattr(k, 'key', str(k)) for k in path]
    if keys[0] == 'batch_stats':
      return np.full(spec.shape, 1.0 if keys[-1] == 'var' else 0.0, spec.dtype)
    fan_in = int(np.prod(spec.shape[:-1])) if len(spec.shape) > 1 else spec.shape[0]
    bound = 1.0 / np.sqrt(max(fan_in, 1))
    return rng.uniform(-bound, bound, spec.shape).astype(spec.dtype)
  return jax.tree_util.tree_map_with_path(leaf, template)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory, tiny_config) -> dict[str, pathlib.Path]:
  """Tiny random G3FA and Unsup3D orbax checkpoints."""
  from g3fa_jax import checkpoint
  root = tmp_path_factory.mktemp('checkpoints')
  init = {name: random_variables(name, tiny_config, seed)
          for seed, name in enumerate(('kp_detector', 'generator', 'unsup3d'))}
  paths = {'g3fa': root / 'g3fa', 'unsup3d': root / 'unsup3d'}
  checkpoint.save_checkpoint(paths['g3fa'], 0, {k: init[k] for k in ('kp_detector', 'generator')},
                             tiny_config.to_dict(), source='random tiny')
  checkpoint.save_checkpoint(paths['unsup3d'], 0, {'unsup3d': init['unsup3d']},
                             tiny_config.to_dict(), source='random tiny')
  return paths


@pytest.fixture(scope='module')
def animator(checkpoints) -> 'Animator':
  """The tiny G3FA checkpoint restored."""
  from g3fa_jax.inference.animator import Animator
  return Animator.from_checkpoint(checkpoints['g3fa'])


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
