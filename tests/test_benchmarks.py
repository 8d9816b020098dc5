"""The side-by-side benchmark plumbing (no timing is asserted): the official side skipped with a
message, alternation order, MFU and peak memory from a fake compiled step and fake devices, the
machine plan of run_all and its one JSON."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks'
sys.path.insert(0, str(BENCHMARKS))

# pylint: disable=g-import-not-at-top,wrong-import-position
import bench_animate
import device_figures
import run_all
import side_by_side


class FakeCompiled:
  """A compiled step whose cost analysis is given."""

  def __init__(self, cost):
    self.cost = cost

  def cost_analysis(self):
    if isinstance(self.cost, Exception):
      raise self.cost
    return self.cost


class FakeDevice:
  """A device with a kind and memory statistics (None: the backend keeps none)."""

  def __init__(self, kind, stats):
    self.device_kind = kind
    self.stats = stats

  def memory_stats(self):
    return self.stats


def test_flops_from_cost_analysis_reads_dicts_and_lists():
  assert device_figures.flops_from_cost_analysis({'flops': 3e12, 'bytes accessed': 1.0}) == 3e12
  assert device_figures.flops_from_cost_analysis([{'flops': 1e9}, {'flops': 2e9}]) == 3e9
  assert device_figures.flops_from_cost_analysis(None) is None
  assert device_figures.flops_from_cost_analysis({'bytes accessed': 5.0}) is None
  assert device_figures.flops_from_cost_analysis({'flops': -1.0}) is None


def test_step_flops_counts_a_convolution_from_the_lowered_program():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
      x, w, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
  lowered = conv.lower(jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 3, 4)))
  macs = 6 * 6 * 4 * 3 * 9  # output pixels x output channels x input channels x taps
  assert device_figures.step_flops_per_device(lowered, None, 1) == pytest.approx(2 * macs)
  assert device_figures.step_flops_per_device(lowered, None, 4) == pytest.approx(2 * macs / 4)


def test_step_flops_fall_back_to_the_compiled_program():
  class Program:
    def __init__(self, cost):
      self.cost = cost

    def cost_analysis(self):
      if self.cost is None:
        raise NotImplementedError
      return self.cost
  assert device_figures.step_flops_per_device(None, Program({'flops': 5.0}), 2) == 5.0
  assert device_figures.step_flops_per_device(Program(None), Program({'flops': 5.0}), 2) == 5.0
  assert device_figures.step_flops_per_device(Program({'flops': 8.0}), Program({'flops': 1.0}),
                                              2) == 4.0
  figures = device_figures.accelerator_figures(Program({'flops': 1.0}), 1.0, [], 'float32',
                                               peak_tflops=1.0, lowered=Program({'flops': 2e12}))
  assert figures['flops_source'] == 'lowered' and figures['mfu'] == pytest.approx(2.0)


def test_peak_flops_by_device_kind_and_dtype():
  assert device_figures.peak_flops_per_s('NVIDIA H200', 'bfloat16') == pytest.approx(989.4e12)
  assert device_figures.peak_flops_per_s('NVIDIA H100 PCIe', 'bfloat16') == pytest.approx(756e12)
  assert device_figures.peak_flops_per_s('NVIDIA A100-SXM4-80GB', 'float32') == pytest.approx(
      156e12)
  assert device_figures.peak_flops_per_s('cpu', 'float32') is None


def test_accelerator_figures_from_a_fake_compiled_step():
  devices = [FakeDevice('NVIDIA H200', {'peak_bytes_in_use': 3 * 2**30}),
             FakeDevice('NVIDIA H200', {'peak_bytes_in_use': 5 * 2**30})]
  # 989.4 TFLOP/s peak, 98.94 TFLOP in 0.25 s -> 40 % MFU.
  figures = device_figures.accelerator_figures(FakeCompiled({'flops': 98.94e12}), 0.25, devices,
                                               'bfloat16')
  assert figures['mfu'] == pytest.approx(0.4)
  assert figures['peak_device_memory_mib'] == pytest.approx(5 * 1024)
  assert figures['peak_tflops'] == pytest.approx(989.4)


def test_accelerator_figures_without_stats_or_cost_are_none():
  figures = device_figures.accelerator_figures(FakeCompiled(RuntimeError('no cost')), 1.0,
                                               [FakeDevice('cpu', None)], 'float32')
  assert figures == {'flops_per_step_per_device': None, 'flops_source': None, 'peak_tflops': None,
                     'mfu': None,
                     'peak_device_memory_mib': None}
  given = device_figures.accelerator_figures(FakeCompiled({'flops': 2e12}), 2.0,
                                             [FakeDevice('cpu', None)], 'float32',
                                             peak_tflops=2.0)
  assert given['mfu'] == pytest.approx(0.5)


def test_official_side_is_skipped_with_a_message_for_a_missing_clone(tmp_path):
  result = side_by_side.run_official(str(tmp_path / 'nowhere'), 'train', 2, 256, 1, 0)
  assert 'skipped' in result and 'not a clone of the official code' in result['skipped']


def test_official_script_prints_skipped_json_for_a_missing_clone(tmp_path):
  done = subprocess.run([sys.executable, str(BENCHMARKS / 'official_torch.py'), '--official',
                         str(tmp_path), '--mode', 'animate'], capture_output=True, text=True,
                        check=False, timeout=300)
  assert done.returncode == 0
  assert 'not a clone' in side_by_side.parse_last_json(done.stdout)['skipped']


def test_official_side_refuses_sizes_other_than_256(tmp_path):
  (tmp_path / 'modules').mkdir()
  (tmp_path / 'modules' / 'generator.py').write_text('')
  result = side_by_side.run_official(str(tmp_path), 'train', 2, 64, 1, 0)
  assert '256x256' in result['skipped']


def test_parse_last_json_takes_the_last_json_line():
  out = 'warning: x\n{"a": 1}\nnoise {\n{"b": 2}\ntrailing text\n'
  assert side_by_side.parse_last_json(out) == {'b': 2}
  assert side_by_side.parse_last_json('no json here') is None


def test_ratio():
  assert side_by_side.ratio(20.0, 10.0) == 2.0
  assert side_by_side.ratio(None, 10.0) is None


def test_side_by_side_alternates_official_first():
  order = []

  def ours():
    order.append('ours')
    return [1.0, 3.0]

  def official():
    order.append('official')
    return {'step_s_all': [4.0, 8.0], 'torch': 't', 'threads': 2, 'device': 'cpu'}
  times, runs = side_by_side.time_side_by_side(ours, official, rounds=2)
  assert order == ['official', 'ours', 'official', 'ours']
  assert times == [1.0, 3.0, 1.0, 3.0]
  summary = side_by_side.official_summary(runs)
  assert summary['median_s'] == 6.0 and summary['all_s'] == [4.0, 8.0, 4.0, 8.0]
  assert side_by_side.time_side_by_side(ours, None, rounds=1)[1] == []


def test_official_summary_reports_a_skip():
  assert side_by_side.official_summary([{'skipped': 'torch is not installed'}]) == {
      'skipped': 'torch is not installed'}
  assert side_by_side.official_summary([]) is None


def _train_result(**extra):
  result = {'devices': '1 x cpu', 'batch_size': 2, 'image_size': 64,
            'config_geometry_mode': 'detached', 'compute_dtype': 'float32', 'compile_s': 1.0,
            'step_s_median': 2.0, 'step_s_all': [2.0], 'images_per_s': 1.0,
            'peak_host_memory_mib': 10.0, 'xla_flags': '', 'mfu': None,
            'peak_device_memory_mib': None, 'load_averages_before': [1.0, 1.0, 1.0],
            'machine': {'cpu': 'Test CPU', 'cpus': 2, 'load_averages': [1.0, 1.0, 1.0]}}
  result.update(extra)
  return result


def test_format_result_prints_both_figures_and_the_ratio():
  text = side_by_side.format_train_result(_train_result(
      official={'median_s': 5.0, 'all_s': [5.0], 'torch': '2', 'threads': 2, 'device': 'cpu'},
      speedup_vs_official=2.5))
  assert 'official PyTorch step: 5.000 s' in text and '2.50x' in text and 'Test CPU' in text
  skipped = side_by_side.format_train_result(_train_result(official={'skipped': 'torch is not installed'}))
  assert 'official: skipped (torch is not installed)' in skipped
  gpu = side_by_side.format_train_result(_train_result(mfu=0.42, peak_tflops=989.4,
                                                peak_device_memory_mib=2048.0))
  assert 'MFU 42.0 %' in gpu and 'peak device memory 2048 MiB' in gpu


class FakeAnimator:
  """Returns the driving frames; counts calls."""

  def __init__(self):
    self.calls = 0

  def animate(self, source, driving, batch_size):
    del source, batch_size
    self.calls += 1
    return driving


def test_animate_batch_with_a_missing_official_clone(tmp_path):
  animator = FakeAnimator()
  row = bench_animate.measure_batch(animator, 8, 2, 4, repeats=2, rounds=2,
                                    official=str(tmp_path / 'nowhere'))
  assert animator.calls == 1 + 2 * 2  # first (compile) batch, then repeats x rounds
  assert len(row['frame_s_all']) == 4 and row['frames_per_s'] > 0
  assert 'not a clone' in row['official']['skipped']
  assert 'official: skipped' in bench_animate.format_row(row)


def test_run_all_plans_by_machine(tmp_path):
  cpu = dict(run_all.plan('cpu', 1, '/x', str(tmp_path)))
  assert set(cpu) == {'train_float32_b2', 'animate', 'profile_b2', 'profile_ops_b2',
                      'conv_256_128x64', 'conv_128_128x256'}
  assert all('--official=/x' in argv for name, argv in cpu.items()
             if not name.startswith(('profile_ops', 'conv')))
  assert '--in_channels=128' in cpu['conv_256_128x64'] and '--torch' in cpu['conv_256_128x64']
  gpu = dict(run_all.plan('gpu', 2, None, str(tmp_path)))
  assert set(gpu) == {f'train_{d}_b{b}' for d in ('float32', 'bfloat16') for b in (8, 16, 32)
                      } | {'animate', 'profile_b16'}
  assert '--batch_size=32' in gpu['profile_b16']  # 16 per device x 2 devices
  assert '--batch_size=64' in gpu['train_bfloat16_b32']  # per device x 2 devices
  assert '--config.train.compute_dtype=bfloat16' in gpu['train_bfloat16_b32']
  assert not any(a.startswith('--official') for a in gpu['train_float32_b8'])


def test_run_all_assembles_one_json(tmp_path):
  (tmp_path / 'train_float32_b8.json').write_text(json.dumps(
      {'step_s_median': 0.5, 'official': {'median_s': 2.0}}))
  (tmp_path / 'train_bfloat16_b8.json').write_text(json.dumps({'step_s_median': 0.25}))
  names = ['train_float32_b8', 'train_bfloat16_b8', 'animate', 'profile_b2']
  figures = run_all.assemble(str(tmp_path), names, {'profile_b2': {'error': 'exit 1'}}, 'gpu')
  results = figures['results']
  assert results['train_bfloat16_b8']['speedup_vs_official'] == 8.0
  assert results['animate'] == {'error': 'the benchmark wrote no JSON'}
  assert results['profile_b2'] == {'error': 'exit 1'}
  assert figures['backend'] == 'gpu' and 'cpu' in figures['machine']
  json.dumps(figures)


def test_the_official_side_runs_on_the_gpu_when_jax_does():
  assert side_by_side.official_device(None, 'gpu') == 'cuda'
  assert side_by_side.official_device(None, 'cpu') == 'cpu'
  assert side_by_side.official_device('cuda:1', 'cpu') == 'cuda:1'


def test_run_all_refuses_an_out_path_in_a_missing_folder(tmp_path):
  done = subprocess.run([sys.executable, str(BENCHMARKS / 'run_all.py'), '--out',
                         str(tmp_path / 'missing' / 'x.json'), '--dry-run'],
                        capture_output=True, text=True, check=False, timeout=300)
  assert done.returncode == 2
  assert 'not a file in an existing folder' in done.stderr


def test_run_all_budget_stops_a_long_benchmark_and_skips_the_rest(tmp_path):
  quick = [sys.executable, '-c', 'pass']
  slow = [sys.executable, '-c', 'import time; time.sleep(120)']
  fail = [sys.executable, '-c', 'raise SystemExit(3)']
  seen = []
  runs = [('quick', quick), ('fail', fail), ('slow', slow), ('never', quick)]
  started = time.monotonic()
  # Wide margins, so that a loaded machine's slow process starts do not change the outcome: the
  # first two take a second or two, 'slow' would take 120 s and is stopped at the 15 s budget.
  failures = run_all.run_with_budget(runs, 15., lambda f: seen.append(dict(f)), min_start_s=0.5)
  assert time.monotonic() - started < 100
  assert 'quick' not in failures and failures['fail'] == {'error': 'exit 3'}
  assert 'budget ended' in failures['slow']['error']
  assert 'not run' in failures['never']['error']
  assert len(seen) == 3  # after quick, fail and slow; 'never' never started


def test_run_all_plans_the_middle_gpu_batch_and_the_animation_first(tmp_path):
  names = [name for name, _ in run_all.plan('gpu', 1, '/x', str(tmp_path))]
  assert names[:3] == ['train_float32_b16', 'train_bfloat16_b16', 'animate']
  assert names[-1] == 'profile_b16'


def test_bench_conv_rows_compute_the_same_convolution_on_both_sides():
  """Each row of bench_conv is the same result in JAX (NHWC) and PyTorch (NCHW), so its two
  timings compare the same work."""
  pytest.importorskip('torch')
  import numpy as np  # pylint: disable=g-import-not-at-top
  import bench_conv  # pylint: disable=g-import-not-at-top
  inputs = bench_conv.conv_inputs(batch=2, size=6, cin=3, cout=4, k=3, seed=1)
  ours = {row: call() for row, call in bench_conv.jax_calls(inputs).items()}
  theirs = {row: call() for row, call in bench_conv.torch_calls(inputs, threads=1).items()}
  assert set(ours) == set(theirs) == set(bench_conv.ROWS)
  nchw = lambda t: t.detach().permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(np.asarray(ours['forward']), nchw(theirs['forward']), atol=1e-5)
  np.testing.assert_allclose(np.asarray(ours['input gradient']), nchw(theirs['input gradient']),
                             atol=1e-5)
  weight, bias = ours['weight gradient']
  np.testing.assert_allclose(np.asarray(weight),
                             theirs['weight gradient'][0].permute(2, 3, 1, 0).numpy(), atol=1e-4)
  np.testing.assert_allclose(np.asarray(bias), theirs['weight gradient'][1].numpy(), atol=1e-4)
  # Not all zeros: the rows compute something.
  assert np.abs(np.asarray(weight)).max() > 0.1
