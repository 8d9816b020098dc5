"""Accelerator figures of a compiled step: model FLOPs utilisation and peak device memory.

MFU = (FLOPs of one step per device, from XLA's cost analysis of the LOWERED program, i.e. the
model's own operations before backend rewrites, divided by the device count) / (step seconds x the
device's peak FLOP/s for the compute dtype). The compiled program's cost analysis is no measure on
GPUs: XLA:GPU hands convolutions to cuDNN custom calls that it counts as no FLOPs (on an H200 it
gave 0.22 TFLOP for a vox-256 batch-16 step whose lowered program has 19.1 TFLOP); it is the
fallback only where a lowered program is not given. Peaks are the vendors' dense
figures per chip; for float32 on NVIDIA Ampere and later XLA runs convolutions and matmuls in TF32
(JAX's default precision), so the TF32 tensor-core peak is the one that applies. A device not in
the table has no MFU unless a peak is given (`--peak_tflops`).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

# (substring of jax's device_kind, lower case) -> {dtype: dense peak TFLOP/s per chip}.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ('h200', {'float32': 494.7, 'bfloat16': 989.4}),
    ('h100 pcie', {'float32': 378.0, 'bfloat16': 756.0}),
    ('h100', {'float32': 494.7, 'bfloat16': 989.4}),
    ('a100', {'float32': 156.0, 'bfloat16': 312.0}),
    ('l4', {'float32': 60.0, 'bfloat16': 121.0}),
    ('a10g', {'float32': 35.0, 'bfloat16': 70.0}),
    ('v100', {'float32': 15.7, 'bfloat16': 125.0}),
    ('tpu v6', {'float32': 918.0, 'bfloat16': 918.0}),
    ('tpu v5 lite', {'float32': 197.0, 'bfloat16': 197.0}),
    ('tpu v5e', {'float32': 197.0, 'bfloat16': 197.0}),
    ('tpu v5', {'float32': 459.0, 'bfloat16': 459.0}),
    ('tpu v4', {'float32': 275.0, 'bfloat16': 275.0}),
)


def peak_flops_per_s(device_kind: str, dtype: str) -> Optional[float]:
  """The dense peak FLOP/s of one device of `device_kind` in `dtype`, or None if unknown."""
  kind = device_kind.lower()
  for key, peaks in PEAK_TFLOPS:
    if key in kind:
      return peaks[dtype] * 1e12 if dtype in peaks else None
  return None


def flops_from_cost_analysis(cost: Any) -> Optional[float]:
  """The 'flops' of `compiled.cost_analysis()` (a dict, or a list of per-program dicts in older
  JAX versions); None when XLA gives none (some backends)."""
  if cost is None:
    return None
  if isinstance(cost, (list, tuple)):
    values = [flops_from_cost_analysis(c) for c in cost]
    values = [v for v in values if v is not None]
    return sum(values) if values else None
  flops = cost.get('flops') if hasattr(cost, 'get') else None
  return float(flops) if flops is not None and flops > 0 else None


def model_flops_utilisation(flops_per_device: Optional[float], step_seconds: float,
                            peak: Optional[float]) -> Optional[float]:
  """Fraction of the peak the step achieved (0..1), or None without FLOPs or peak."""
  if not flops_per_device or not peak or step_seconds <= 0:
    return None
  return flops_per_device / step_seconds / peak


def peak_device_memory_bytes(devices: Sequence[Any]) -> Optional[int]:
  """The largest 'peak_bytes_in_use' of `device.memory_stats()` over `devices`; None where the
  backend keeps no statistics (the CPU)."""
  peaks = []
  for device in devices:
    try:
      stats = device.memory_stats()
    except Exception:  # pylint: disable=broad-except  # backends without stats raise or return None
      stats = None
    if stats and 'peak_bytes_in_use' in stats:
      peaks.append(int(stats['peak_bytes_in_use']))
  return max(peaks) if peaks else None


def _cost_flops(program: Any) -> Optional[float]:
  try:
    return flops_from_cost_analysis(program.cost_analysis())
  except Exception:  # pylint: disable=broad-except  # not every backend implements it
    return None


def step_flops_per_device(lowered: Any, compiled: Any, device_count: int) -> Optional[float]:
  """FLOPs of one step per device: the lowered (whole, unpartitioned) program's over
  `device_count`, else the compiled per-device program's; None when neither has a figure."""
  flops = _cost_flops(lowered) if lowered is not None else None
  if flops is not None:
    return flops / device_count
  return _cost_flops(compiled)


def accelerator_figures(compiled: Any, step_seconds: float, devices: Sequence[Any], dtype: str,
                        peak_tflops: Optional[float] = None, lowered: Any = None
                        ) -> dict[str, Any]:
  """{'flops_per_step_per_device', 'flops_source', 'peak_tflops', 'mfu', 'peak_device_memory_mib'}
  of a step (`lowered`, then `compiled`) that ran in `step_seconds` (median) on `devices`; missing
  figures are None."""
  flops = step_flops_per_device(lowered, compiled, max(1, len(devices)))
  peak = peak_tflops * 1e12 if peak_tflops else peak_flops_per_s(devices[0].device_kind, dtype)
  mfu = model_flops_utilisation(flops, step_seconds, peak)
  memory = peak_device_memory_bytes(devices)
  return {
      'flops_per_step_per_device': flops,
      'flops_source': ('lowered' if lowered is not None and _cost_flops(lowered) is not None
                       else 'compiled' if flops is not None else None),
      'peak_tflops': peak / 1e12 if peak else None,
      'mfu': round(mfu, 4) if mfu is not None else None,
      'peak_device_memory_mib': round(memory / 2**20, 1) if memory is not None else None,
  }
