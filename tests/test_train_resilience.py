"""Training that survives the pod: stop signals, bad records, unwritable or full checkpoint dirs.

End-to-end runs of `run_train.py` on the tiny config with 2 forced host devices (subprocesses;
one step program, compiled once into a persistent cache shared by the runs of this module):
- SIGTERM mid-run stops with a checkpoint and status 0, and the resumed run ends with the same
  weights, optimiser states and RNG as one never stopped; a SIGINT during that save ends the run
  at once and the rerun resumes from the last complete checkpoint to the same weights;
- shards with a broken frame, a damaged record and a record whose frame count disagrees train to
  the end, the skipped pairs counted and named; a lower `data.max_bad_fraction` stops the run
  with a message naming it;
- a checkpoint that cannot be written (files capped by RLIMIT_FSIZE) stops training with one line
  naming the step, path and free space, and the previous checkpoint restores bit for bit;
- an unwritable workdir is refused before anything is built.
The signal handling and the bad-record pipeline are also checked on their own (fast).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time

import grain
import msgpack
import numpy as np
import pytest

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.data import index as index_lib
from g3fa_jax.data import pairs
from g3fa_jax.data import pipeline
from g3fa_jax.data import records
from g3fa_jax.train import checkpointing
from conftest import flatten_tree, subprocess_xla_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUM_STEPS = 6
COMMON = ('--config=configs/tiny.py', '--config.train.log_every_steps=1',
          '--config.train.checkpoint_every_steps=2', '--config.train.keep_checkpoints=10',
          '--config.train.image_summary_every_steps=0')
TIMEOUT = 900
ITEMS = ('kp_detector', 'generator', 'discriminator', 'discriminator2', 'discriminator3',
         'opt_state', 'train_state')


def train_env(cache_dir: pathlib.Path) -> dict[str, str]:
  env = dict(os.environ)
  env.update(JAX_PLATFORMS='cpu',
             XLA_FLAGS=subprocess_xla_flags('--xla_force_host_platform_device_count=2'),
             JAX_COMPILATION_CACHE_DIR=str(cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0', PYTHONPATH=str(ROOT))
  return env


def train_cmd(workdir: pathlib.Path, *flags: str) -> list[str]:
  return [sys.executable, 'run_train.py', f'--workdir={workdir}', *COMMON, *flags]


def run_train(workdir: pathlib.Path, cache_dir: pathlib.Path, *flags: str
              ) -> subprocess.CompletedProcess:
  return subprocess.run(train_cmd(workdir, *flags), cwd=ROOT, env=train_env(cache_dir),
                        capture_output=True, text=True, timeout=TIMEOUT, check=False)


def wait_for(predicate, process: subprocess.Popen, log_path: pathlib.Path, what: str,
             poll: float = 0.05) -> None:
  deadline = time.monotonic() + TIMEOUT
  while not predicate():
    assert process.poll() is None, f'exited before {what}:\n{log_path.read_text()[-3000:]}'
    assert time.monotonic() < deadline, f'timed out waiting for {what}'
    time.sleep(poll)




def error_lines(stderr: str) -> list[str]:
  """The lines of a run's stderr that start with 'error:' (the CLI's one-line messages)."""
  return [line for line in stderr.splitlines() if line.startswith('error:')]


def restore_flat(workdir: pathlib.Path, step: int) -> dict[str, np.ndarray]:
  items, _ = ckpt.restore_items(workdir / 'checkpoints', ITEMS, step)
  return flatten_tree(items)


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
  assert a.keys() == b.keys()
  for key, value in a.items():
    np.testing.assert_array_equal(b[key], value, err_msg=key)


@pytest.fixture(scope='module')
def cache_dir(tmp_path_factory) -> pathlib.Path:
  return tmp_path_factory.mktemp('jax_cache')


@pytest.fixture(scope='module')
def reference(tmp_path_factory, cache_dir) -> pathlib.Path:
  """NUM_STEPS uninterrupted steps (checkpoints at 2, 4, 6)."""
  workdir = tmp_path_factory.mktemp('reference')
  result = run_train(workdir, cache_dir, f'--config.train.num_train_steps={NUM_STEPS}')
  assert result.returncode == 0, result.stderr[-5000:]
  return workdir


# --- Stop signals ------------------------------------------------------------------------------


def run_stop_script(tmp_path: pathlib.Path, body: str) -> subprocess.CompletedProcess:
  """Runs `body` with `stop`, a StopRequest on `tmp_path` (local flag), installed."""
  script = textwrap.dedent('''
      import os, signal, sys, time
      from g3fa_jax.train import preemption
      stop = preemption.StopRequest(sys.argv[1], sync_point=None)
      before = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
      with stop.installed():
      {body}
      after = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
      print('handlers back', after == before)
  ''').format(body=textwrap.indent(textwrap.dedent(body), '    '))
  return subprocess.run([sys.executable, '-c', script, str(tmp_path)], cwd=ROOT,
                        env={**os.environ, 'PYTHONPATH': str(ROOT)}, capture_output=True,
                        text=True, timeout=120, check=False)


def test_stop_request_repeated_sigterm_is_ignored(tmp_path):
  result = run_stop_script(tmp_path, '''
      assert not stop.reached(1)
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(0.1)
      assert stop.reached(2) and stop.reached(3) and stop.stop_step == 2
      with stop.saving(2):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
      print('signals', stop.signals)
  ''')
  assert result.returncode == 0, result.stderr
  assert 'signals [15, 15]' in result.stdout
  assert 'handlers back True' in result.stdout  # The previous handlers are back.
  assert 'SIGTERM received again: ignored' in result.stderr


def test_stop_request_second_sigint_during_save_exits_at_once(tmp_path):
  (tmp_path / '3').mkdir()
  (tmp_path / '5.orbax-checkpoint-tmp').mkdir()
  result = run_stop_script(tmp_path, '''
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(0.1)
      assert stop.reached(5)
      with stop.saving(5):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
      print('not stopped')
  ''')
  assert result.returncode == 128 + signal.SIGINT, (result.stdout, result.stderr)
  assert 'not stopped' not in result.stdout
  assert (f'error: second SIGINT while writing step 5: stopped at once; the last complete '
          f'checkpoint is step 3 in {tmp_path}') in result.stderr


def test_sigterm_saves_exits_0_and_resume_matches_uninterrupted(reference, tmp_path, cache_dir):
  workdir = tmp_path / 'stopped'
  log_path = tmp_path / 'stopped.log'
  flags = (f'--config.train.num_train_steps={NUM_STEPS}',)
  with open(log_path, 'w') as log:
    process = subprocess.Popen(train_cmd(workdir, *flags), cwd=ROOT, env=train_env(cache_dir),
                               stdout=log, stderr=log)
    wait_for(lambda: f'step 3/{NUM_STEPS} (' in log_path.read_text(), process, log_path,
             'step 3')
    process.send_signal(signal.SIGTERM)
    process.wait(TIMEOUT)
  log = log_path.read_text()
  assert process.returncode == 0, log[-5000:]
  stopped = re.findall(r'Stopped by SIGTERM after step (\d+) of 6: checkpoint written to (\S+);',
                       log)
  assert len(stopped) == 1, log[-3000:]
  step = int(stopped[0][0])
  assert 3 <= step < NUM_STEPS, log[-3000:]
  assert stopped[0][1] == str(workdir.absolute() / 'checkpoints' / str(step))
  assert preemption_steps(workdir) == sorted({2, step})

  resumed = run_train(workdir, cache_dir, *flags)
  assert resumed.returncode == 0, resumed.stderr[-5000:]
  assert f'Restored step {step} from' in resumed.stderr
  assert_same_state(restore_flat(reference, NUM_STEPS), restore_flat(workdir, NUM_STEPS))


def preemption_steps(workdir: pathlib.Path) -> list[int]:
  from g3fa_jax.train import preemption  # pylint: disable=g-import-not-at-top
  return preemption.committed_steps(workdir / 'checkpoints')


def test_second_signal_during_the_save_leaves_a_valid_checkpoint(reference, tmp_path,
                                                                 cache_dir):
  workdir = tmp_path / 'aborted'
  checkpoints = workdir / 'checkpoints'
  log_path = tmp_path / 'aborted.log'
  flags = (f'--config.train.num_train_steps={NUM_STEPS}',)
  with open(log_path, 'w') as log:
    process = subprocess.Popen(train_cmd(workdir, *flags), cwd=ROOT, env=train_env(cache_dir),
                               stdout=log, stderr=log)
    wait_for(lambda: (checkpoints / '2' / ckpt.CONFIG_ITEM).is_dir(), process, log_path,
             'checkpoint 2')
    process.send_signal(signal.SIGTERM)
    # The stop checkpoint is being written once its temporary folder appears.
    wait_for(lambda: any(int(m.group(1)) > 2 for p in checkpoints.iterdir()
                         if (m := re.fullmatch(r'(\d+)\.orbax-checkpoint-tmp', p.name))),
             process, log_path, 'the stop save', poll=0.005)
    process.send_signal(signal.SIGINT)
    process.wait(TIMEOUT)
  log = log_path.read_text()
  assert process.returncode == 128 + signal.SIGINT, log[-5000:]
  match = re.search(r'error: second SIGINT while writing step (\d+): stopped at once; the last '
                    r'complete checkpoint is step (\d+) in', log)
  assert match, log[-3000:]
  assert int(match.group(2)) >= 2
  last = preemption_steps(workdir)[-1]
  assert_same_state(restore_flat(reference, last), restore_flat(workdir, last))

  resumed = run_train(workdir, cache_dir, *flags)
  assert resumed.returncode == 0, resumed.stderr[-5000:]
  assert f'Restored step {last} from' in resumed.stderr
  assert not list(checkpoints.glob('*.orbax-checkpoint-tmp'))  # The half save was cleaned up.
  assert_same_state(restore_flat(reference, NUM_STEPS), restore_flat(workdir, NUM_STEPS))


# --- Unwritable workdir, failing checkpoint writes ------------------------------------------------


def test_check_workdir_and_room_refuse_unwritable_and_too_small(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a directory')
  with pytest.raises(checkpointing.UnwritableWorkdirError,
                     match=rf'workdir {re.escape(str(blocker / "run"))} cannot be written '
                           r'\(Not a directory'):
    checkpointing.check_workdir(blocker / 'run')
  with pytest.raises(checkpointing.UnwritableWorkdirError,
                     match=r'[\d.]+ [KMGT]?i?B free, one checkpoint needs about 8388608\.0 TiB'):
    checkpointing.check_room(tmp_path / 'run', 2 ** 63, keep=1)
  checkpointing.check_room(tmp_path / 'run', 1, keep=1)
  checkpointing.check_workdir(tmp_path / 'run')
  assert (tmp_path / 'run' / 'checkpoints').is_dir()
  assert not list((tmp_path / 'run' / 'checkpoints').iterdir())  # The probe is gone.


def test_unwritable_workdir_is_refused_before_anything_runs(tmp_path, cache_dir):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a directory')
  result = run_train(blocker / 'run', cache_dir, '--config.train.num_train_steps=2')
  assert result.returncode == 1
  errors = error_lines(result.stderr)
  assert errors == [f'error: workdir {blocker / "run"} cannot be written (Not a directory '
                    f'[errno 20] at {blocker / "run" / "checkpoints"}): choose another --workdir '
                    'or fix its permissions; nothing was run'], result.stderr[-3000:]
  assert 'device(s) on' not in result.stderr  # Refused before the input and the networks.


def test_failed_checkpoint_write_stops_and_keeps_the_previous_one(reference, tmp_path, cache_dir):
  shutil.copytree(reference / 'checkpoints' / '2', tmp_path / 'checkpoints' / '2')
  # Files over 1 MiB fail with EFBIG. Orbax splits an item's arrays into data files of varying
  # size (the optimiser state's largest 3.6-4.8 MB, the generator's 2.2-2.6 MB, from run to run of
  # the same state), so a cap near them is flaky (4 MiB once let step 4 through); the run's other
  # files (metadata, event files) stay under 0.25 MiB.
  capped = [sys.executable, '-c', 'import os, resource, sys; resource.setrlimit('
            'resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)); os.execv(sys.argv[1], sys.argv[1:])']
  cmd = capped + train_cmd(tmp_path, f'--config.train.num_train_steps={NUM_STEPS}')
  result = subprocess.run(cmd, cwd=ROOT, env=train_env(cache_dir), capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
  assert result.returncode == 1, result.stderr[-5000:]
  errors = error_lines(result.stderr)
  assert len(errors) == 1, result.stderr[-5000:]
  assert re.fullmatch(
      rf'error: checkpoint of step 4 could not be written to '
      rf'{re.escape(str(tmp_path / "checkpoints" / "4"))} \(File too large \[errno 27\]; '
      r'[\d.]+ [KMGT]?i?B free there\); the last good checkpoint, step 2, is intact; training '
      r'stopped: make room or choose another --workdir, then rerun to resume', errors[0]), errors
  assert 'Restored step 2 from' in result.stderr
  assert preemption_steps(tmp_path) == [2]
  assert_same_state(restore_flat(reference, 2), restore_flat(tmp_path, 2))


# --- Bad records ---------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def shards_dir(tmp_path_factory) -> pathlib.Path:
  """6 astronaut 64x64 clips of 8 frames in two shards (4 + 2 records)."""
  # pylint: disable-next=g-import-not-at-top
  from data_prep import prepare, process_clip, astronaut_clips
  raw = tmp_path_factory.mktemp('raw')
  astronaut_clips.make_dataset(raw, 'voxceleb2', identities=3, clips=2, num_frames=8, size=64)
  out = tmp_path_factory.mktemp('shards')
  prepare.run(str(raw), str(out), settings=process_clip.ClipSettings(
      size=64, crop='full', min_frames=4, face_check=False),
              records_per_shard=4, test_fraction=0, progress=False)
  return out


def _rewrite_shard(path: pathlib.Path, edit) -> None:
  """Rewrites an ArrayRecord shard with `edit(i, record_bytes) -> bytes` applied."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  source = grain.sources.ArrayRecordDataSource([str(path)])
  data = [source[i] for i in range(len(source))]
  tmp = path.with_suffix('.tmp')
  writer = array_record_module.ArrayRecordWriter(str(tmp), 'group_size:1,uncompressed')
  for i, d in enumerate(data):
    writer.write(edit(i, d))
  writer.close()
  os.replace(tmp, path)


def _with_header(data: bytes, **changes) -> bytes:
  """The record with header fields changed (its payload untouched)."""
  (length,) = struct.unpack('<I', data[4:8])
  header = msgpack.unpackb(data[8:8 + length], raw=False)
  header.update(changes)
  head = msgpack.packb(header, use_bin_type=True)
  return records.MAGIC + struct.pack('<I', len(head)) + head + data[8 + length:]


def _with_broken_frames(data: bytes, frames) -> bytes:
  """The record with the first 32 bytes of the given frames overwritten."""
  record = records.deserialize(data)
  items = [bytes(f) for f in record['frames']]
  for i in frames:
    items[i] = b'\x00' * 32 + items[i][32:]
  return records.serialize({**records.metadata(record), 'frames': items})


BROKEN_FRAMES_RECORD = 1    # shard train-00000, record 1: every frame's JPEG header overwritten
DAMAGED_RECORD = 2          # shard train-00000, record 2: bytes overwritten in the shard file
WRONG_COUNT_RECORD = 4      # shard train-00001, record 0: num_frames says 11, it holds 8
BAD_RECORDS = (BROKEN_FRAMES_RECORD, DAMAGED_RECORD, WRONG_COUNT_RECORD)


@pytest.fixture(scope='module')
def bad_shards_dir(shards_dir, tmp_path_factory) -> pathlib.Path:
  out = tmp_path_factory.mktemp('bad_shards')
  shutil.copytree(shards_dir, out, dirs_exist_ok=True)
  split = index_lib.load_split(out, 'train')
  assert split.shard_sizes == (4, 2)
  first, second = (pathlib.Path(p) for p in split.shard_paths)
  _rewrite_shard(first, lambda i, d: _with_broken_frames(d, range(8)) if i == 1 else d)
  _rewrite_shard(second, lambda i, d: _with_header(d, num_frames=11) if i == 0 else d)
  # Bytes overwritten inside record 2 of the file: ArrayRecord's chunk hash no longer matches.
  frame = bytes(records.deserialize(
      grain.sources.ArrayRecordDataSource([str(first)])[DAMAGED_RECORD])['frames'][3])
  data = bytearray(first.read_bytes())
  at = data.find(frame)
  assert at > 0 and data.find(frame, at + 1) == -1
  data[at + 100:at + 116] = b'\xff' * 16
  first.write_bytes(bytes(data))
  return out


def _pairs(data_dir, skip_bad, steps=9):
  ds = pipeline.make_pair_dataset(data_dir, global_batch_size=2, seed=3, with_record_index=True,
                                  shard_options=grain.sharding.NoSharding(), skip_bad=skip_bad)
  it = iter(ds)
  return [next(it) for _ in range(steps)]


def test_pipeline_skips_bad_pairs_and_names_them(shards_dir, bad_shards_dir):
  clean = _pairs(shards_dir, skip_bad=False)
  clean_skipping = _pairs(shards_dir, skip_bad=True)
  for a, b in zip(clean, clean_skipping):  # No bad record: the same batches as before.
    assert not b[pairs.BAD_COUNT].any() and not any(b[pairs.BAD_NOTES])
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])

  batches = _pairs(bad_shards_dir, skip_bad=True)
  notes = [line for b in batches for n in b[pairs.BAD_NOTES] for line in str(n).splitlines()]
  assert sum(int(b[pairs.BAD_COUNT].sum()) for b in batches) == len(notes) > 0
  used = np.concatenate([b['record'] for b in batches])
  assert not set(used.tolist()) & set(BAD_RECORDS)  # Only good records reach a batch.
  assert all(b['source'].shape == (2, 64, 64, 3) for b in batches)
  kinds = set()
  for note in notes:
    if note.startswith('shard train-00000.array_record, record 1 '):
      assert re.fullmatch(r"shard train-00000\.array_record, record 1 \(clip '[^']+'\), frame "
                          r'[0-7]: cannot decode \(\w+: .*\)', note), note
      kinds.add('frame')
    elif note.startswith('shard train-00000.array_record, record 2: '):
      assert 'unreadable record (RuntimeError: Corrupted Riegeli' in note, note
      kinds.add('damaged')
    else:
      assert note == ('shard train-00001.array_record, record 0: unreadable record (ValueError: '
                      'num_frames=11 but the split index says 8 frames)'), note
      kinds.add('count')
  assert kinds == {'frame', 'damaged', 'count'}  # 9 steps cover three epochs: all were drawn.

  with pytest.raises(pairs.BadRecordError, match=r'shard train-0000[01]\.array_record, record'):
    _pairs(bad_shards_dir, skip_bad=False)


def test_bad_fraction_limit():
  from g3fa_jax.train import input_pipeline  # pylint: disable=g-import-not-at-top
  exceeded = input_pipeline.bad_fraction_exceeded
  assert not exceeded(0, 1000, 0.01)
  assert not exceeded(1, 10, 0.01)   # One early bad pair is not judged.
  assert not exceeded(1, 100, 0.01)
  assert exceeded(2, 100, 0.01)
  assert exceeded(1, 1, 0.0)


def _bad_pairs_scalars(log: str) -> dict[int, float]:
  return {int(m.group(1)): float(m.group(2))
          for m in re.finditer(r'\] \[(\d+)\] .*?bad_pairs=([\d.]+)', log)}


def test_training_over_bad_shards_skips_counts_and_finishes(bad_shards_dir, tmp_path, cache_dir,
                                                            reference):
  del reference  # Only for its compiled step in the cache.
  result = run_train(tmp_path, cache_dir, '--config.data.name=shards',
                     f'--config.data.data_dir={bad_shards_dir}', '--config.data.worker_count=0',
                     '--config.data.max_bad_fraction=0.75', '--config.train.num_train_steps=4')
  assert result.returncode == 0, result.stderr[-5000:]
  skipped = re.findall(r'bad record skipped: (shard train-0000[01]\.array_record, record \d)',
                       result.stderr)
  scalars = _bad_pairs_scalars(result.stderr)
  assert sorted(scalars) == [1, 2, 3, 4], result.stderr[-3000:]
  assert scalars[4] == len(skipped) > 0
  assert set(skipped) <= {'shard train-00000.array_record, record 1',
                          'shard train-00000.array_record, record 2',
                          'shard train-00001.array_record, record 0'}
  assert preemption_steps(tmp_path) == [2, 4]


def test_training_stops_past_max_bad_fraction(bad_shards_dir, tmp_path, cache_dir, reference):
  del reference  # Only for its compiled step in the cache.
  result = run_train(tmp_path, cache_dir, '--config.data.name=shards',
                     f'--config.data.data_dir={bad_shards_dir}', '--config.data.worker_count=0',
                     '--config.data.max_bad_fraction=0.1', '--config.train.num_train_steps=20')
  assert result.returncode == 1, result.stderr[-5000:]
  errors = error_lines(result.stderr)
  assert len(errors) == 1, result.stderr[-3000:]
  assert re.fullmatch(
      r'error: step \d+: \d+ of \d+ pairs drawn from the shards in '
      rf'{re.escape(str(bad_shards_dir))} failed \([\d.]+%\), more than '
      r'data\.max_bad_fraction=0\.1; training stopped \(the "bad record skipped" lines name '
      r'them\): repair or re-prepare those shards, or raise '
      r'data\.max_bad_fraction', errors[0]), errors[0]
