"""benchmarks/profile_ops.py: the trace of a real jitted function joined with its compiled HLO,
and the op kinds and networks read from instruction names and source metadata."""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks'
sys.path.insert(0, str(BENCHMARKS))

# pylint: disable=g-import-not-at-top,wrong-import-position
import profile_ops


def test_network_and_direction_from_source_metadata():
  assert profile_ops.network_of(
      'jit(train_step)/jvp(Generator)/decoder/SPADE_3/SPADE_1/jit(relu)/max') == \
      'Generator/decoder forward'
  assert profile_ops.network_of(
      'jit(train_step)/transpose(jvp(Generator))/dense_motion_network/hourglass/conv/rev') == \
      'Generator/dense_motion_network backward'
  assert profile_ops.network_of('jit(train_step)/transpose(jvp(Vgg19))/features_28/conv') == \
      'Vgg19 backward'
  assert profile_ops.network_of('jit(train_step)/add').startswith('step')


def test_op_kinds():
  assert profile_ops.op_kind('transpose_copy_fusion.177', 'fusion') == profile_ops.KINDS[0]
  assert profile_ops.op_kind('wrapped_reduce-window.3', 'fusion') == profile_ops.KINDS[1]
  assert profile_ops.op_kind('add_maximum_fusion.1', 'fusion') == profile_ops.KINDS[2]
  assert profile_ops.op_kind('convolution.251', 'convolution') == profile_ops.KINDS[3]
  assert profile_ops.op_kind('dot.4', 'dot') == profile_ops.KINDS[4]


def test_a_real_trace_is_summed_per_instruction_of_the_compiled_program(tmp_path):
  def fn(x, w):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return jnp.sum(jnp.transpose(jax.nn.relu(y), (3, 1, 2, 0)) ** 2, axis=(1, 2))

  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 64, 64, 8)), jnp.float32)
  w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 8, 16)), jnp.float32)
  compiled = jax.jit(fn).lower(x, w).compile()
  instructions = profile_ops.parse_hlo(compiled.as_text())
  assert any(info['opcode'] == 'convolution' for info in instructions.values())
  jax.block_until_ready(compiled(x, w))
  with jax.profiler.trace(str(tmp_path), create_perfetto_trace=True):
    jax.block_until_ready(compiled(x, w))
  summary = profile_ops.summarize(profile_ops._read_trace(str(tmp_path)), instructions, top=5)
  assert summary['traced_s'] > 0
  assert set(summary['by_kind']) <= set(profile_ops.KINDS)
  assert abs(sum(summary['by_kind'].values()) - summary['traced_s']) < 1e-9
  assert abs(sum(summary['by_network'].values()) - summary['traced_s']) < 1e-9
  assert summary['slowest'] and all(row['instruction'] in instructions
                                    for row in summary['slowest'])
  text = profile_ops.format_summary(summary, step_s=1.0)
  assert 'kind of op' in text and summary['slowest'][0]['instruction'][:32] in text
