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

import collections
import functools
import glob
import gzip
import json
import os
import re
import tempfile
import time
from typing import Any, Iterable, Mapping

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

KINDS = ('layout copies and transposes', 'reductions', 'elementwise fusions',
         'convolutions (dispatch on CPU)', 'matmuls (dispatch on CPU)', 'other')
GENERATOR_PARTS = ('_encode', 'dense_motion_network', 'Render_model', 'decoder')
_INSTRUCTION = re.compile(r'^\s*(?:ROOT )?%?([\w\-.]+) = (\S+) ([\w\-]+)\((.*)$')
_COMPUTATION = re.compile(r'^%?([\w\-.]+) .*\{\s*$')


def op_kind(name: str, opcode: str) -> str:
  """The kind of an HLO instruction, from its opcode and (for fusions) the name XLA gave it."""
  if opcode in ('copy', 'transpose') or 'transpose' in name or name.startswith('copy'):
    return KINDS[0]
  if 'reduce' in opcode or 'reduce' in name:
    return KINDS[1]
  if opcode == 'convolution' or name.startswith(('convolution', 'conv_general_dilated')):
    return KINDS[3]
  if opcode == 'dot' or name.startswith(('dot', 'dot_general')):
    return KINDS[4]
  if opcode == 'fusion':
    return KINDS[2]
  return KINDS[5]


def network_of(op_name: str) -> str:
  """'Generator/decoder forward' from 'jit(train_step)/jvp(Generator)/decoder/SPADE_0/...':
  the network, for the generator also its part (encoder, dense motion, renderer, decoder);
  'backward' when the path is under transpose(...); 'step' when no network is named."""
  match = re.search(r'jvp\((\w+)\)\)?/([\w.]+)?', op_name)
  if not match:
    return 'step (losses, optimizer, glue)'
  network, part = match.group(1), match.group(2)
  if network == 'Generator' and part and part.split('.')[-1] in GENERATOR_PARTS:
    network = f'{network}/{part.split(".")[-1]}'
  return f'{network} {"backward" if "transpose(" in op_name else "forward"}'


def parse_hlo(text: str) -> dict[str, dict[str, Any]]:
  """{instruction name: {'opcode', 'shape', 'operands', 'op_names': [source op_name metadata]}}
  for every instruction; a fusion's op_names are those of the instructions it calls, an
  instruction without any takes those of its operands."""
  computations: dict[str, list[str]] = {}
  instructions: dict[str, dict[str, Any]] = {}
  current = None
  for line in text.splitlines():
    found = _COMPUTATION.match(line)
    if found and not line.startswith(' '):
      current = found.group(1)
      computations[current] = []
      continue
    found = _INSTRUCTION.match(line)
    if not found:
      continue
    name, shape, opcode, rest = found.groups()
    op_name = re.search(r'op_name="([^"]+)"', rest)
    if current is not None and op_name:
      computations[current].append(op_name.group(1))
    calls = re.search(r'calls=%?([\w\-.]+)', rest)
    operands = re.findall(r'%([\w\-.]+)', rest.split('), ')[0])
    instructions.setdefault(name, {'opcode': opcode, 'shape': shape, 'operands': operands,
                                   'calls': calls.group(1) if calls else None,
                                   'op_names': [op_name.group(1)] if op_name else []})
  for info in instructions.values():
    if info['calls'] in computations:
      info['op_names'] = info['op_names'] + computations[info['calls']]
  # XLA drops the metadata of the reductions it rewrites: those take their operands'.
  for info in instructions.values():
    if not info['op_names']:
      info['op_names'] = [n for operand in info['operands']
                          for n in instructions.get(operand, {}).get('op_names', [])]
  return instructions


def summarize(events: Iterable[Mapping[str, Any]], instructions: Mapping[str, Mapping[str, Any]],
              top: int) -> dict[str, Any]:
  """Sums trace events ('X' events with 'name' and 'dur' in microseconds) that name an
  instruction of the program, per kind, per network and per instruction (seconds)."""
  by_kind: collections.Counter = collections.Counter()
  by_network: collections.Counter = collections.Counter()
  by_instruction: collections.Counter = collections.Counter()
  for event in events:
    info = instructions.get(event.get('name'))
    if event.get('ph') != 'X' or info is None:
      continue
    seconds = event['dur'] / 1e6
    by_kind[op_kind(event['name'], info['opcode'])] += seconds
    names = collections.Counter(network_of(n) for n in info['op_names'])
    by_network[names.most_common(1)[0][0] if names else 'step (losses, optimizer, glue)'] += seconds
    by_instruction[event['name']] += seconds
  slowest = []
  for name, seconds in by_instruction.most_common(top):
    info = instructions[name]
    names = collections.Counter(network_of(n) for n in info['op_names'])
    slowest.append({'instruction': name, 'seconds': seconds, 'shape': info['shape'],
                    'kind': op_kind(name, info['opcode']),
                    'network': names.most_common(1)[0][0] if names else ''})
  return {'traced_s': sum(by_kind.values()), 'by_kind': dict(by_kind.most_common()),
          'by_network': dict(by_network.most_common()), 'slowest': slowest}


def format_summary(summary: Mapping[str, Any], step_s: float) -> str:
  lines = [f'step {step_s:.3f} s wall; traced XLA instructions {summary["traced_s"]:.3f} s; '
           f'the rest ({step_s - summary["traced_s"]:.3f} s) is mostly convolution and matmul '
           'work on the thread pool (their events time the dispatch only)', '',
           f'{"kind of op":40s} seconds']
  lines += [f'{kind:40s} {seconds:7.3f}' for kind, seconds in summary['by_kind'].items()]
  lines += ['', f'{"network (traced ops only)":48s} seconds']
  lines += [f'{network:48s} {seconds:7.3f}'
            for network, seconds in list(summary['by_network'].items())[:15]]
  lines += ['', f'{"slowest instructions":32s} {"ms":>8s}  shape / kind / network']
  lines += [f'{row["instruction"][:32]:32s} {row["seconds"] * 1e3:8.1f}  {row["shape"][:40]} / '
            f'{row["kind"]} / {row["network"]}' for row in summary['slowest']]
  return '\n'.join(lines)


def _read_trace(trace_dir: str) -> list[dict[str, Any]]:
  paths = glob.glob(os.path.join(trace_dir, '**', '*.trace.json.gz'), recursive=True)
  if not paths:
    raise FileNotFoundError(f'no *.trace.json.gz under {trace_dir}: the profiler wrote no trace')
  with gzip.open(max(paths, key=os.path.getmtime)) as f:
    return json.load(f)['traceEvents']


def main(argv) -> None:
  del argv
  from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
  xla_flags.tune_cpu()
  import jax  # pylint: disable=g-import-not-at-top
  from g3fa_jax.data import toy  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import optim  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import pretrained  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import state as state_lib  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import trainer  # pylint: disable=g-import-not-at-top

  config = _CONFIG.value
  if _BATCH.value:
    config.batch_size = _BATCH.value
  if _SIZE.value:
    config.image_size = _SIZE.value
  config.pretrained.use_random_weights = True
  trainer.validate_config(config)
  batch_size, size = int(config.train.batch_size), int(config.image_size)
  optimizers = optim.make_optimizers(config, steps_per_epoch=1000)
  frozen = pretrained.frozen_variables(config)
  state = jax.jit(functools.partial(state_lib.init_train_state, config, optimizers))(
      jax.random.PRNGKey(config.seed))
  batch = toy.ToyPairs(seed=0, num_videos=8, image_size=size, batch_size=batch_size,
                       process_index=0, process_count=1).local_batch(0)
  step = jax.jit(functools.partial(step_lib.train_step, nets=step_lib.Networks.from_config(config),
                                   settings=step_lib.StepSettings.from_config(config),
                                   optimizers=optimizers), donate_argnums=(0,))
  compiled = step.lower(state, batch, frozen).compile()
  instructions = parse_hlo(compiled.as_text())
  for _ in range(2):
    state, _ = compiled(state, batch, frozen)
  jax.block_until_ready(state)
  trace_dir = _TRACE_DIR.value or tempfile.mkdtemp(prefix='g3fa_trace_')
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    start = time.perf_counter()
    state, _ = compiled(state, batch, frozen)
    jax.block_until_ready(state)
    step_s = time.perf_counter() - start
  summary = summarize(_read_trace(trace_dir), instructions, _TOP.value)
  print(f'{size}x{size}, batch {batch_size}, {jax.devices()[0].platform}; trace in {trace_dir}')
  print(format_summary(summary, step_s))
  if _JSON_OUT.value:
    with open(_JSON_OUT.value, 'w') as f:
      json.dump({'benchmark': 'profile_ops', 'batch_size': batch_size, 'image_size': size,
                 'step_s': step_s, **summary}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
