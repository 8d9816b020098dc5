"""Trains G3FA (or runs the job the config names, `config.job`).

  python run_train.py --config=configs/vox.py --workdir=runs/vox [--config.batch_size=64 ...]
  python run_train.py --config=configs/synthetic.py --workdir=runs/synthetic

`config.job` is 'train' (the training loop, `g3fa_jax.train.trainer`) or 'synthetic_demo' (the
newcomer's main job, `g3fa_jax.demo.job`: synthetic data, an inverse renderer, training, held-out
evaluation and a video). Any config field can be overridden with --config.<field>=<value>.
Running the same command again resumes from the latest checkpoint in WORKDIR/checkpoints; SIGTERM
or SIGINT stops after the current step with a checkpoint and status 0 (README, "Checkpoints and
resuming"). Multi-host: start the same command on
every host with --multihost (jax.distributed finds the cluster on TPU pods, SLURM, ...) or with
--coordinator_address=HOST:PORT --num_processes=N --process_id=I.
"""

from __future__ import annotations

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Training config (python file).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and TensorBoard logs.')
_MULTIHOST = flags.DEFINE_bool('multihost', False,
                               'Call jax.distributed.initialize() (cluster auto-detection).')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None,
                                   'HOST:PORT of process 0, for jax.distributed.initialize().')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process\'s index.')
_CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', None, 'Split the CPU into this many devices (tests and demos of sharding).')
_TUNE_CPU = flags.DEFINE_bool(
    'tune_cpu', True, 'Add the XLA:CPU flags of g3fa_jax.train.xla_flags to XLA_FLAGS (faster '
    'CPU steps; no effect on accelerators).')
flags.mark_flags_as_required(['config', 'workdir'])

JOBS = ('train', 'synthetic_demo')


def _job(name: str):
  """The function (config, workdir) that runs job `name` (one of JOBS)."""
  if name == 'synthetic_demo':
    from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top
    return job.run
  from g3fa_jax.train import trainer  # pylint: disable=g-import-not-at-top
  return trainer.train


def main(argv) -> int:
  del argv
  job = _CONFIG.value.get('job', 'train')
  if job not in JOBS:
    print(f'error: config.job={job!r}: use one of {", ".join(JOBS)}', file=sys.stderr)
    return 1
  if _TUNE_CPU.value:
    from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
    xla_flags.tune_cpu()
  import jax  # pylint: disable=g-import-not-at-top
  if _CPU_DEVICES.value:
    jax.config.update('jax_num_cpu_devices', _CPU_DEVICES.value)
  if _MULTIHOST.value or _COORDINATOR.value:
    # CPU collectives for multi-process runs without accelerators (ignored on GPU/TPU).
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  from g3fa_jax.train import checkpointing  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import input_pipeline  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import pretrained  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import trainer  # pylint: disable=g-import-not-at-top
  trainer.quiet_library_logs()
  logging.info('JAX %s: process %d of %d, %d local / %d global devices (%s)', jax.__version__,
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.default_backend())
  try:
    _job(job)(_CONFIG.value, _WORKDIR.value)
  except (pretrained.PretrainedWeightsError, trainer.NonFiniteError,
          checkpointing.UnwritableWorkdirError, checkpointing.CheckpointWriteError,
          input_pipeline.BadDataError) as e:
    logging.error('%s', e)
    print(f'error: {e}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)))
