"""benchmarks/op_trace.py (what profile_ops.py prints): the trace of a real jitted function
joined with its compiled HLO, and the op kinds and networks read from instruction names and source
metadata. op_trace defines no flags, so importing it next to other benchmark scripts is safe."""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks'
sys.path.insert(0, str(BENCHMARKS))

# pylint: disable=g-import-not-at-top,wrong-import-position
import op_trace


def test_network_and_direction_from_source_metadata():
  assert op_trace.network_of(
      'jit(train_step)/jvp(Generator)/decoder/SPADE_3/SPADE_1/jit(relu)/max') == \
      'Generator/decoder forward'
  assert op_trace.network_of(
      'jit(train_step)/transpose(jvp(Generator))/dense_motion_network/hourglass/conv/rev') == \
      'Generator/dense_motion_network backward'
  assert op_trace.network_of('jit(train_step)/transpose(jvp(Vgg19))/features_28/conv') == \
      'Vgg19 backward'
  assert op_trace.network_of('jit(train_step)/add').startswith('step')


def test_op_kinds():
  assert op_trace.op_kind('transpose_copy_fusion.177', 'fusion') == op_trace.KINDS[0]
  assert op_trace.op_kind('wrapped_reduce-window.3', 'fusion') == op_trace.KINDS[1]
  assert op_trace.op_kind('add_maximum_fusion.1', 'fusion') == op_trace.KINDS[2]
  assert op_trace.op_kind('convolution.251', 'convolution') == op_trace.KINDS[3]
  assert op_trace.op_kind('dot.4', 'dot') == op_trace.KINDS[4]


def test_a_real_trace_is_summed_per_instruction_of_the_compiled_program(tmp_path):
  def fn(x, w):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return jnp.sum(jnp.transpose(jax.nn.relu(y), (3, 1, 2, 0)) ** 2, axis=(1, 2))

  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 64, 64, 8)), jnp.float32)
  w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 8, 16)), jnp.float32)
  compiled = jax.jit(fn).lower(x, w).compile()
  instructions = op_trace.parse_hlo(compiled.as_text())
  assert any(info['opcode'] == 'convolution' for info in instructions.values())
  jax.block_until_ready(compiled(x, w))
  with jax.profiler.trace(str(tmp_path), create_perfetto_trace=True):
    jax.block_until_ready(compiled(x, w))
  summary = op_trace.summarize(op_trace.read_trace(str(tmp_path)), instructions, top=5)
  assert summary['traced_s'] > 0
  assert set(summary['by_kind']) <= set(op_trace.KINDS)
  assert abs(sum(summary['by_kind'].values()) - summary['traced_s']) < 1e-9
  assert abs(sum(summary['by_network'].values()) - summary['traced_s']) < 1e-9
  assert summary['slowest'] and all(row['instruction'] in instructions
                                    for row in summary['slowest'])
  text = op_trace.format_summary(summary, step_s=1.0)
  assert 'kind of op' in text and summary['slowest'][0]['instruction'][:32] in text
