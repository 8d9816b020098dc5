"""The XLA:CPU flags: added once, never overriding the user's, and not at all with G3FA_TUNE_CPU=0."""

from __future__ import annotations

from g3fa_jax.train import xla_flags


def test_adds_the_cpu_flags_once_and_keeps_the_users_setting():
  environ = {'XLA_FLAGS': '--xla_cpu_use_onednn=false'}
  flags = xla_flags.tune_cpu(environ)
  assert '--xla_cpu_use_onednn=false' in flags and '--xla_cpu_use_onednn=true' not in flags
  assert '--xla_cpu_experimental_ynn_fusion_type=' in flags
  assert xla_flags.tune_cpu(environ) == flags  # a second call adds nothing


def test_opt_out_leaves_xla_flags_alone():
  environ = {'G3FA_TUNE_CPU': '0', 'XLA_FLAGS': '--xla_force_host_platform_device_count=2'}
  assert xla_flags.tune_cpu(environ) == '--xla_force_host_platform_device_count=2'
  assert environ['XLA_FLAGS'] == '--xla_force_host_platform_device_count=2'
  assert xla_flags.tune_cpu({'G3FA_TUNE_CPU': '0'}) == ''


def test_add_flags_keeps_a_flag_already_set():
  environ = {'XLA_FLAGS': '--xla_backend_optimization_level=2'}
  flags = xla_flags.add_flags(('--xla_backend_optimization_level=0', '--xla_foo=1'), environ)
  assert flags == '--xla_backend_optimization_level=2 --xla_foo=1' == environ['XLA_FLAGS']
  assert xla_flags.add_flags(('--xla_foo=2',), environ) == flags
  assert xla_flags.add_flags(('--xla_foo=1',), {}) == '--xla_foo=1'
