"""Reading a jax.profiler trace against the compiled HLO of the traced program (for
`profile_ops.py`): each trace event that names an XLA instruction is summed per kind of op, per
network and direction (from the instruction's source metadata) and per instruction.

On a CPU, XLA runs convolutions and matmuls on its thread pool: their events only time the
dispatch. Every other op runs where it is traced.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
from typing import Any, Iterable, Mapping

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


def _main_network(info: Mapping[str, Any], default: str) -> str:
  """The network most of an instruction's source ops belong to (`network_of`), or `default`."""
  names = collections.Counter(network_of(n) for n in info['op_names'])
  return names.most_common(1)[0][0] if names else default


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
    by_network[_main_network(info, 'step (losses, optimizer, glue)')] += seconds
    by_instruction[event['name']] += seconds
  slowest = []
  for name, seconds in by_instruction.most_common(top):
    info = instructions[name]
    slowest.append({'instruction': name, 'seconds': seconds, 'shape': info['shape'],
                    'kind': op_kind(name, info['opcode']), 'network': _main_network(info, '')})
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


def read_trace(trace_dir: str) -> list[dict[str, Any]]:
  paths = glob.glob(os.path.join(trace_dir, '**', '*.trace.json.gz'), recursive=True)
  if not paths:
    raise FileNotFoundError(f'no *.trace.json.gz under {trace_dir}: the profiler wrote no trace')
  with gzip.open(max(paths, key=os.path.getmtime)) as f:
    return json.load(f)['traceEvents']
