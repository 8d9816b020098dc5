"""The layout rule: every import runs downhill, and the library never imports `data_prep`.

Drawn from its imports (every `import` and `from ... import`, at the top of a file or inside a
function), each module sits on a floor of LAYERS and may import only its own package or a floor
below it. The floors read as the data flow: media and data below the models and losses, training
and inference above them, then metrics, evaluation, animation and converters, the live mode and
the web app, the demo job, and the command-line layer (`data_prep`, the run scripts and configs) and the benchmarks on top.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Bottom to top. A module may import a package of its own floor only if it is its own package.
LAYERS = (
    ('g3fa_jax.model_config', 'g3fa_jax.checkpoint'),
    ('g3fa_jax.ops',),
    ('g3fa_jax.media',),
    ('g3fa_jax.data',),
    ('g3fa_jax.synthetic',),
    ('g3fa_jax.models', 'g3fa_jax.face'),
    ('g3fa_jax.losses',),
    ('g3fa_jax.train', 'g3fa_jax.inference'),
    ('g3fa_jax.metrics',),
    ('g3fa_jax.evaluation', 'g3fa_jax.convert'),
    ('g3fa_jax.animate',),
    ('g3fa_jax.live', 'g3fa_jax.app'),  # The live mode and the web app run the animation.
    ('g3fa_jax.demo',),
    # The public facade (`g3fa_jax.Animator`, ...) and the command-line layer.
    ('g3fa_jax', 'data_prep', 'configs', 'run_train', 'run_eval'),
    ('benchmarks',),  # They time the library and data_prep's commands.
)
FACADE = 'g3fa_jax'  # The package's own `__init__` only, not its subpackages.
SOURCES = ('g3fa_jax', 'data_prep', 'configs', 'benchmarks', 'run_train.py', 'run_eval.py')


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(ROOT).with_suffix('').parts)
  if parts[-1] == '__init__':
    parts.pop()
  return '.'.join(parts)


def _known_modules() -> dict[str, pathlib.Path]:
  files = []
  for source in SOURCES:
    path = ROOT / source
    files.extend(path.rglob('*.py') if path.is_dir() else [path])
  return {_module_name(f): f for f in files}


MODULES = _known_modules()


def _unit(module: str) -> str:
  """The LAYERS entry a module belongs to (the longest matching package name)."""
  best = ''
  for floor in LAYERS:
    for name in floor:
      inside = module == name or (module.startswith(name + '.') and name != FACADE)
      if inside and len(name) > len(best):
        best = name
  if not best:
    raise AssertionError(f'{module}: on no floor of LAYERS; add its package there')
  return best


FLOOR = {name: i for i, floor in enumerate(LAYERS) for name in floor}


def _imports(module: str, path: pathlib.Path) -> list[tuple[int, str]]:
  """(line, imported project module) of every import in the file, wherever it stands."""
  package = module if path.name == '__init__.py' else module.rpartition('.')[0]
  out = []
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      out.extend((node.lineno, alias.name) for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = package.split('.')[:len(package.split('.')) - node.level + 1]
        target = '.'.join(base + ([node.module] if node.module else []))
      else:
        target = node.module or ''
      for alias in node.names:  # `from pkg import submodule` imports the submodule.
        full = f'{target}.{alias.name}'
        out.append((node.lineno, full if full in MODULES else target))
  return [(line, name) for line, name in out if name in MODULES or
          any(m.startswith(name + '.') for m in MODULES)]


def _arrows() -> list[tuple[str, int, str]]:
  return [(module, line, target) for module, path in sorted(MODULES.items())
          for line, target in _imports(module, path)]


def test_every_module_is_on_a_floor():
  for module in MODULES:
    _unit(module)


def test_no_import_runs_uphill():
  uphill = []
  for module, line, target in _arrows():
    source_unit, target_unit = _unit(module), _unit(target)
    if source_unit == target_unit:
      continue
    if FLOOR[target_unit] >= FLOOR[source_unit]:
      uphill.append(f'{MODULES[module].relative_to(ROOT)}:{line} imports {target} '
                    f'({target_unit} is not below {source_unit})')
  assert not uphill, '\n'.join(uphill)


def test_the_library_never_imports_data_prep():
  offending = [f'{MODULES[module].relative_to(ROOT)}:{line}' for module, line, target in _arrows()
               if module.split('.')[0] == 'g3fa_jax' and target.split('.')[0] == 'data_prep']
  assert not offending, offending


@pytest.mark.parametrize('old', ['g3fa_jax.synthetic.job', 'g3fa_jax.animate.motion',
                                 'g3fa_jax.train.synthetic_data', 'g3fa_jax.data.checkpoint',
                                 'data_prep.video_io', 'data_prep.crop', 'data_prep.shards'])
def test_moved_modules_are_gone(old):
  assert old not in MODULES


def test_public_import_paths_still_work():
  # pylint: disable=g-import-not-at-top
  import g3fa_jax
  from g3fa_jax.data import make_pair_dataset
  from g3fa_jax.data import pipeline
  from g3fa_jax.inference import animator, inverse_renderer
  assert g3fa_jax.Animator is animator.Animator
  assert g3fa_jax.InverseRenderer is inverse_renderer.InverseRenderer
  assert make_pair_dataset is pipeline.make_pair_dataset
