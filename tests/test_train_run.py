"""End-to-end training runs of the tiny config through `run_train.py` (subprocesses).

All runs share one step program, compiled once into a persistent JAX compilation cache: the first
run pays for compilation, the others load it.
- the generator loss falls over a few dozen steps, and the checkpoint opens with `Animator`;
- k steps, kill -9, resume to N gives bit-identical weights, optimiser states and RNG to N steps
  in one run;
- a non-finite loss stops training with a message naming the step, keeping the last good
  checkpoint.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from g3fa_jax import checkpoint as ckpt
from conftest import flatten_tree, subprocess_xla_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUM_STEPS = 20
CHECKPOINT_EVERY = 5
COMMON = ('--config=configs/tiny.py', '--config.train.log_every_steps=1',
          f'--config.train.checkpoint_every_steps={CHECKPOINT_EVERY}',
          '--config.train.keep_checkpoints=10', '--config.train.image_summary_every_steps=10')
TIMEOUT = 900
ITEMS = ('kp_detector', 'generator', 'discriminator', 'discriminator2', 'discriminator3',
         'opt_state', 'train_state')


def train_env(cache_dir: pathlib.Path) -> dict[str, str]:
  env = dict(os.environ)
  env.update(XLA_FLAGS=subprocess_xla_flags(), JAX_PLATFORMS='cpu',
             JAX_COMPILATION_CACHE_DIR=str(cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0', PYTHONPATH=str(ROOT))
  return env


def run_train(workdir: pathlib.Path, cache_dir: pathlib.Path, *flags: str
              ) -> subprocess.CompletedProcess:
  cmd = [sys.executable, 'run_train.py', f'--workdir={workdir}', *COMMON, *flags]
  return subprocess.run(cmd, cwd=ROOT, env=train_env(cache_dir), capture_output=True, text=True,
                        timeout=TIMEOUT, check=False)


def generator_losses(log: str) -> dict[int, float]:
  """{step: generator_loss} from the metric log lines `[step] ... generator_loss=x, ...`."""
  return {int(m.group(1)): float(m.group(2))
          for m in re.finditer(r'\] \[(\d+)\] .*?generator_loss=([-\d.e+naif]+)', log)}


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory) -> pathlib.Path:
  return tmp_path_factory.mktemp('jax_cache')


@pytest.fixture(scope='module')
def full_run(tmp_path_factory, cache_dir) -> tuple[pathlib.Path, subprocess.CompletedProcess]:
  workdir = tmp_path_factory.mktemp('full')
  result = run_train(workdir, cache_dir, f'--config.train.num_train_steps={NUM_STEPS}')
  assert result.returncode == 0, result.stderr[-5000:]
  return workdir, result


def restore_all(workdir: pathlib.Path, step: int) -> dict:
  items, meta = ckpt.restore_items(workdir / 'checkpoints', ITEMS, step)
  assert meta['format'] == 'g3fa-jax' and meta['config']['image_size'] == 64
  return items


def test_generator_loss_falls_and_checkpoint_opens_with_animator(full_run):
  workdir, result = full_run
  losses = generator_losses(result.stderr)
  assert sorted(losses) == list(range(1, NUM_STEPS + 1)), result.stderr[-3000:]
  values = np.array([losses[s] for s in sorted(losses)])
  assert np.all(np.isfinite(values))
  # Batches are random pairs of random clips, so single steps are noisy; halves are not (and the
  # run is deterministic: same seed, same data, same numbers).
  first, second = values[:NUM_STEPS // 2].mean(), values[NUM_STEPS // 2:].mean()
  assert second < 0.95 * first, values
  assert np.polyfit(np.arange(NUM_STEPS), values, 1)[0] < 0, values
  assert 'steps/s' in result.stderr and 'ETA' in result.stderr
  assert list((workdir / 'tensorboard').glob('events.out.tfevents.*'))

  import g3fa_jax  # pylint: disable=g-import-not-at-top
  animator = g3fa_jax.Animator.from_checkpoint(workdir / 'checkpoints')
  kp = animator.keypoints(np.zeros((1, 64, 64, 3), np.float32))
  assert kp['value'].shape == (1, 15, 2)
  assert sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit()) == [
      5, 10, 15, 20]


def test_kill_and_resume_matches_one_uninterrupted_run(full_run, tmp_path, cache_dir):
  reference_dir, _ = full_run
  workdir = tmp_path / 'interrupted'
  cmd = [sys.executable, 'run_train.py', f'--workdir={workdir}', *COMMON,
         f'--config.train.num_train_steps={NUM_STEPS}']
  log_path = tmp_path / 'killed.log'
  with open(log_path, 'w') as log:
    process = subprocess.Popen(cmd, cwd=ROOT, env=train_env(cache_dir), stdout=log, stderr=log)
    first = workdir / 'checkpoints' / str(CHECKPOINT_EVERY)
    deadline = time.monotonic() + TIMEOUT
    while not (first / ckpt.CONFIG_ITEM).is_dir():
      assert process.poll() is None, log_path.read_text()[-3000:]
      assert time.monotonic() < deadline, 'no checkpoint before the timeout'
      time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
  assert process.returncode == -signal.SIGKILL  # It was still training.

  resumed = run_train(workdir, cache_dir, f'--config.train.num_train_steps={NUM_STEPS}')
  assert resumed.returncode == 0, resumed.stderr[-5000:]
  assert re.search(r'Restored step (\d+)', resumed.stderr)
  reference = restore_all(reference_dir, NUM_STEPS)
  result = restore_all(workdir, NUM_STEPS)
  flat_ref = flatten_tree(reference)
  flat = flatten_tree(result)
  assert flat.keys() == flat_ref.keys()
  for key, value in flat_ref.items():
    np.testing.assert_array_equal(flat[key], value, err_msg=key)


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, cache_dir, full_run):
  del full_run  # Only for its compiled step in the cache.
  result = run_train(tmp_path, cache_dir, '--config.train.num_train_steps=4',
                     '--config.train.checkpoint_every_steps=2', '--config.data.toy_nan_step=3')
  assert result.returncode == 1
  assert re.search(r'step 3: non-finite .*generator_loss', result.stderr), result.stderr[-3000:]
  assert 'last good checkpoint is step 2' in result.stderr
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps == [2]




@pytest.fixture(scope='module')
def shards_dir(tmp_path_factory) -> pathlib.Path:
  """6 astronaut 64x64 clips prepared into ArrayRecord shards (whole-frame crops: fast)."""
  from data_prep import prepare, process_clip, astronaut_clips  # pylint: disable=g-import-not-at-top
  raw = tmp_path_factory.mktemp('raw')
  astronaut_clips.make_dataset(raw, 'voxceleb2', identities=3, clips=2, num_frames=8, size=64)
  out = tmp_path_factory.mktemp('shards')
  prepare.run(str(raw), str(out), settings=process_clip.ClipSettings(size=64, crop='full', min_frames=4,
                                                                    face_check=False),
              records_per_shard=4, test_fraction=0, progress=False)
  return out


def test_resume_on_prepared_shards_continues_the_data_order(shards_dir, tmp_path, cache_dir,
                                                            full_run):
  """4 steps on grain-fed shards; then resuming the step-2 checkpoint to 4 gives the same
  weights, which needs the saved grain iterator position."""
  del full_run  # Only for its compiled step in the cache.
  flags = ('--config.data.name=shards', f'--config.data.data_dir={shards_dir}',
           '--config.data.worker_count=0', '--config.train.num_train_steps=4',
           '--config.train.checkpoint_every_steps=2')
  first = run_train(tmp_path, cache_dir, *flags)
  assert first.returncode == 0, first.stderr[-5000:]
  reference = flatten_tree(restore_all(tmp_path, 4))
  assert (tmp_path / 'checkpoints' / '2' / 'data_iterator').is_dir()
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.rmtree(tmp_path / 'checkpoints' / '4')
  resumed = run_train(tmp_path, cache_dir, *flags)
  assert resumed.returncode == 0, resumed.stderr[-5000:]
  assert 'Restored step 2' in resumed.stderr
  result = flatten_tree(restore_all(tmp_path, 4))
  for key, value in reference.items():
    np.testing.assert_array_equal(result[key], value, err_msg=key)
