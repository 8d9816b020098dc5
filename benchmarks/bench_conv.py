r"""One convolution's three parts timed: forward, input gradient, weight (+ bias) gradient, in JAX
(XLA, with the project's CPU flags) and, with --torch, in PyTorch (oneDNN) side by side.

  python benchmarks/bench_conv.py --torch                       # 3x3, 128 -> 128, 2 x 256x256
  python benchmarks/bench_conv.py --torch --out_channels=64     # the SPADE decoder's gamma, beta
  python benchmarks/bench_conv.py --torch --size=64 --in_channels=1024 --out_channels=1024

The training step's profile (docs/speed.md) compares whole networks; this says whether the
difference lies in the convolutions themselves. Each figure is the median of --repeats calls
after one warm-up call, the two sides alternating, with the FLOP rate (a multiply-add, 2 FLOPs,
per tap and channel pair); the CPU and the load averages before and after are printed. XLA
computes a weight gradient without the forward (a convolution is linear), and PyTorch's
`convolution_backward` is asked for exactly the gradients of each row, so the rows compare the
same work.
"""

from __future__ import annotations

import os
import pathlib
import statistics
import sys
import time
from typing import Any, Callable

from absl import app
from absl import flags

_BATCH = flags.DEFINE_integer('batch', 2, 'Batch size.')
_SIZE = flags.DEFINE_integer('size', 256, 'Height and width of the input.')
_IN = flags.DEFINE_integer('in_channels', 128, 'Input channels.')
_OUT = flags.DEFINE_integer('out_channels', 128, 'Output channels.')
_KERNEL = flags.DEFINE_integer('kernel', 3, 'Odd kernel size (stride 1, "same" zero padding).')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed calls per row and side.')
_TORCH = flags.DEFINE_bool('torch', False, 'Also time PyTorch (skipped with a message when '
                           'torch is not installed).')
_THREADS = flags.DEFINE_integer('threads', 0, 'PyTorch threads (0: the CPUs visible).')
_JSON_OUT = flags.DEFINE_string('json_out', None, 'Write the figures to this JSON file.')

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import side_by_side  # pylint: disable=g-import-not-at-top,wrong-import-position

ROWS = ('forward', 'input gradient', 'weight gradient')


def alternating_medians(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
  """{name: median seconds of `repeats` calls}, one warm-up call each, the names taking turns."""
  for fn in calls.values():
    fn()
  times = {name: [] for name in calls}
  for _ in range(repeats):
    for name, fn in calls.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def conv_inputs(batch: int, size: int, cin: int, cout: int, k: int, seed: int = 0
                ) -> dict[str, Any]:
  """Float32 numpy x (B, S, S, Cin), w (k, k, Cin, Cout), b (Cout,), dy (B, S, S, Cout): both
  sides compute on these."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  return {'x': rng.standard_normal((batch, size, size, cin), np.float32),
          'w': rng.standard_normal((k, k, cin, cout), np.float32) * (cin * k * k) ** -0.5,
          'b': rng.standard_normal((cout,), np.float32),
          'dy': rng.standard_normal((batch, size, size, cout), np.float32)}


def jax_calls(inputs: dict[str, Any]) -> dict[str, Callable[[], Any]]:
  """{row: a call that computes it and returns it, computed}: the forward (B, S, S, Cout), the
  input gradient (B, S, S, Cin), the weight and bias gradients ((k, k, Cin, Cout), (Cout,))."""
  import jax  # pylint: disable=g-import-not-at-top

  x, w, b, dy = (jax.numpy.asarray(inputs[n]) for n in ('x', 'w', 'b', 'dy'))
  k = w.shape[0]
  pad = ((k // 2, k // 2),) * 2

  def conv(x, w, b):
    return jax.lax.conv_general_dilated(x, w, (1, 1), pad,
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC')) + b

  forward = jax.jit(conv)
  input_grad = jax.jit(lambda x, w, b, dy: jax.vjp(lambda x: conv(x, w, b), x)[1](dy)[0])
  weight_grad = jax.jit(lambda x, w, b, dy: jax.vjp(lambda w, b: conv(x, w, b), w, b)[1](dy))
  return {
      'forward': lambda: jax.block_until_ready(forward(x, w, b)),
      'input gradient': lambda: jax.block_until_ready(input_grad(x, w, b, dy)),
      'weight gradient': lambda: jax.block_until_ready(weight_grad(x, w, b, dy)),
  }


def torch_calls(inputs: dict[str, Any], threads: int) -> dict[str, Callable[[], Any]]:
  """The same rows in PyTorch (NCHW tensors: forward (B, Cout, S, S), input gradient (B, Cin, S,
  S), weight and bias gradients ((Cout, Cin, k, k), (Cout,))), or {} without torch."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return {}
  torch.set_num_threads(threads)
  x = torch.from_numpy(inputs['x']).permute(0, 3, 1, 2).contiguous()
  w = torch.from_numpy(inputs['w']).permute(3, 2, 0, 1).contiguous()
  b = torch.from_numpy(inputs['b'])
  dy = torch.from_numpy(inputs['dy']).permute(0, 3, 1, 2).contiguous()
  k = w.shape[-1]
  padding = [k // 2, k // 2]

  def backward(mask):
    return torch.ops.aten.convolution_backward(dy, x, w, [w.shape[0]], [1, 1], padding, [1, 1],
                                               False, [0, 0], 1, mask)

  return {
      'forward': lambda: torch.nn.functional.conv2d(x, w, b, padding=padding),
      'input gradient': lambda: backward([True, False, False])[0],
      'weight gradient': lambda: backward([False, True, True])[1:],
  }


def main(argv) -> None:
  del argv
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from g3fa_jax.data.shards import write_json_atomic  # pylint: disable=g-import-not-at-top
  from g3fa_jax.train import xla_flags  # pylint: disable=g-import-not-at-top
  xla_flags.tune_cpu()
  load_before = side_by_side.load_averages()
  shape = (_BATCH.value, _SIZE.value, _IN.value, _OUT.value, _KERNEL.value)
  if _KERNEL.value < 1 or _KERNEL.value % 2 == 0:
    raise app.UsageError(f'--kernel={_KERNEL.value}: use an odd size (1, 3, 5, 7), for which '
                         '"same" padding is symmetric on both sides')
  batch, size, cin, cout, k = shape
  gflop = 2 * batch * size * size * cin * cout * k * k / 1e9
  inputs = conv_inputs(*shape)
  sides = {'jax': jax_calls(inputs)}
  if _TORCH.value:
    calls = torch_calls(inputs, threads=_THREADS.value or os.cpu_count() or 1)
    if calls:
      sides['torch'] = calls
    else:
      print('PyTorch side skipped: torch is not installed (pip install torch)')
  print(f'{k}x{k} convolution, {cin} -> {cout} channels, batch {batch}, {size}x{size}, float32: '
        f'{gflop:.1f} GFLOP per row; medians of {_REPEATS.value} calls')
  figures = {'shape': dict(zip(('batch', 'size', 'in_channels', 'out_channels', 'kernel'),
                               shape)), 'gflop': gflop, 'seconds': {}, 'torch_over_jax': {}}
  for row in ROWS:
    seconds = alternating_medians({side: calls[row] for side, calls in sides.items()},
                                  _REPEATS.value)
    figures['seconds'][row] = seconds
    text = '  '.join(f'{side} {s * 1e3:8.1f} ms ({gflop / s:5.0f} GFLOP/s)'
                     for side, s in seconds.items())
    figures['torch_over_jax'][row] = side_by_side.ratio(seconds.get('torch'), seconds['jax'])
    if figures['torch_over_jax'][row] is not None:
      text += f'  torch / jax time {figures["torch_over_jax"][row]:.2f}'
    print(f'{row:16s} {text}')
  figures.update(machine=side_by_side.machine(), load_averages_before=load_before,
                 load_averages_after=side_by_side.load_averages())
  print(f'machine: {figures["machine"]["cpu"]}, {figures["machine"]["cpus"]} CPUs; load averages '
        f'before {load_before}, after {figures["load_averages_after"]}')
  if _JSON_OUT.value:
    write_json_atomic(pathlib.Path(_JSON_OUT.value), figures)


if __name__ == '__main__':
  app.run(main)
