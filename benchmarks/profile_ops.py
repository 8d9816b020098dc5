r"""Where XLA spends one training step, op by op: a jax.profiler trace joined with the compiled HLO.

  python benchmarks/profile_ops.py --config=configs/vox.py --batch_size=2
  python benchmarks/profile_ops.py --config=configs/synthetic.py --top=20

`profile_step.py` times each network alone; this traces the whole jitted step (after two warm-up
steps) and sums the trace's events per XLA instruction of the compiled program: per kind of op
(layout copies and transposes, reductions, elementwise fusions, convolutions, matmuls), per network
and direction (from each instruction's source metadata: `jvp(Generator)/decoder/...` is the
forward, `transpose(jvp(...))` the backward; a copy or transpose counts where the value it moves
was made, so the activations that XLA transposes for a backward pass's weight gradients show
under the forward) and the slowest instructions with their shapes.

On a CPU, XLA runs convolutions and matmuls on its thread pool: their events only time the
dispatch, so the step's wall time minus the events' sum is mostly convolution and matmul work.
The other ops run where they are traced, so their figures are what they cost. Nothing is timed
for the official code here (PyTorch's profiler would be needed); see `profile_step.py --official`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from absl import app
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/synthetic.py', 'Training config.',
                                          lock_config=False)
_BATCH = flags.DEFINE_integer('batch_size', None, 'Global batch (default: the config\'s).')
_SIZE = flags.DEFINE_integer('image_size', None, 'Frame size (default: the config\'s).')
_TOP = flags.DEFINE_integer('top', 25, 'How many of the slowest instructions to list.')
_TRACE_DIR = flags.DEFINE_string('trace_dir', None, 'Keep the trace here (default: a temp dir).')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the summary to this JSON file.')

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import op_trace  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(argv) -> None:
  del argv
  from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
  xla_flags.tune_cpu()
  import jax  # pylint: disable=g-import-not-at-top
  import step_setup  # pylint: disable=g-import-not-at-top

  config = step_setup.override(_CONFIG.value, _BATCH.value, _SIZE.value)
  bench = step_setup.jitted_train_step(config)
  batch_size, size = bench.batch_size, bench.image_size
  compiled = bench.lower().compile()
  instructions = op_trace.parse_hlo(compiled.as_text())
  for _ in range(2):
    bench.run(compiled)
  jax.block_until_ready(bench.state)
  trace_dir = _TRACE_DIR.value or tempfile.mkdtemp(prefix='g3fa_trace_')
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    start = time.perf_counter()
    bench.run(compiled)
    jax.block_until_ready(bench.state)
    step_s = time.perf_counter() - start
  summary = op_trace.summarize(op_trace.read_trace(trace_dir), instructions, _TOP.value)
  print(f'{size}x{size}, batch {batch_size}, {jax.devices()[0].platform}; trace in {trace_dir}')
  print(op_trace.format_summary(summary, step_s))
  if _JSON_OUT.value:
    with open(_JSON_OUT.value, 'w') as f:
      json.dump({'benchmark': 'profile_ops', 'batch_size': batch_size, 'image_size': size,
                 'step_s': step_s, **summary}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
