"""The results table: the paper's columns, as text/markdown and as JSON.

Same identity (Table 1): L1 (0-255 scale), LPIPS, PSNR, SSIM, FID, AKD.
Cross identity (Table 2): FID, CSIM.
A metric without weights reads `not computed`, and the table's notes give the command that makes
its weights; a metric with weights but no value (e.g. no face found for AKD) reads `n/a`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Mapping

from g3fa_jax.evaluation.protocols import Entry, ProtocolResult

TITLES = {'same_identity': 'Same-identity reconstruction',
          'cross_identity': 'Cross-identity reenactment'}
COLUMNS = {'same_identity': ('L1', 'LPIPS', 'PSNR', 'SSIM', 'FID', 'AKD'),
           'cross_identity': ('FID', 'CSIM')}
ARROWS = {'L1': '↓', 'LPIPS': '↓', 'PSNR': '↑', 'SSIM': '↑', 'FID': '↓', 'AKD': '↓', 'CSIM': '↑'}
DIGITS = {'L1': 2, 'LPIPS': 3, 'PSNR': 2, 'SSIM': 3, 'FID': 2, 'AKD': 2, 'CSIM': 4}


def cell(name: str, entry: Entry) -> str:
  if entry.status != 'ok' or entry.value is None:
    return entry.status if entry.status != 'ok' else 'n/a'
  return f'{entry.value:.{DIGITS.get(name, 4)}f}'


def extra_value(name: str, entry: Entry) -> str:
  """An extra value (beside the table's columns, e.g. 'LPIPS (vgg)') as text."""
  return cell(name, entry) if entry.status != 'ok' else f'{entry.value:.4g}'


def table_notes(results: Mapping[str, ProtocolResult], code: str = '') -> dict[str, str]:
  """'<metric> (<protocol title>)' -> why it is `not computed` or `n/a` (and the command that
  makes its weights, quoted with `code`), for the table's columns and the extras alike: the
  notes every form of the table (console, markdown) shows."""
  notes: dict[str, str] = {}
  for name, result in results.items():
    for key, entry in {**result.metrics, **result.extras}.items():
      if entry.status != 'ok' and entry.note:
        note = entry.note.split('; make them with:')[0]
        command = f'; make them with {code}{entry.command}{code}' if entry.command else ''
        notes.setdefault(f'{key} ({TITLES.get(name, name)})', f'{entry.status}: {note}{command}')
  return notes


def to_json(results: Mapping[str, ProtocolResult], meta: Mapping[str, Any]) -> dict[str, Any]:
  """A JSON-able dict: `meta` plus, per protocol, metrics/extras as {value, status, note,
  command} and the counts."""
  out = dict(meta)
  for name, result in results.items():
    out[name] = {
        'num_videos' if name == 'same_identity' else 'num_pairs': result.num_videos,
        'num_frames': result.num_frames,
        'seconds': round(result.seconds, 2),
        'frames_per_second': round(result.frames_per_second, 2),
        'metrics': {k: dataclasses.asdict(v) for k, v in result.metrics.items()},
        'extras': {k: dataclasses.asdict(v) for k, v in result.extras.items()},
        **result.details,
    }
  return out


def to_markdown(results: Mapping[str, ProtocolResult], meta: Mapping[str, Any]) -> str:
  """The tables as GitHub markdown, with the notes on what was not computed."""
  lines = [f'# G3FA evaluation: {meta.get("checkpoint", "")} (step {meta.get("step", "?")})', '',
           f'Data: `{meta.get("data_dir", "")}` split `{meta.get("split", "test")}`.', '']
  for name, result in results.items():
    count = (f'{result.num_videos} videos' if name == 'same_identity'
             else f'{result.num_videos} pairs')
    lines += [f'## {TITLES.get(name, name)} ({count}, {result.num_frames} frames)', '']
    columns = COLUMNS.get(name, tuple(result.metrics))
    lines.append('| ' + ' | '.join(f'{c} {ARROWS.get(c, "")}'.strip() for c in columns) + ' |')
    lines.append('|' + ' --- |' * len(columns))
    lines.append('| ' + ' | '.join(cell(c, result.metrics[c]) for c in columns) + ' |')
    lines.append('')
    if name == 'same_identity' and result.details.get('lpips_net'):
      lines.append(f'LPIPS: {result.details["lpips_net"]} variant.')
    for key, entry in result.extras.items():
      lines.append(f'- {key}: {extra_value(key, entry)}')
    lines.append(f'- {result.frames_per_second:.1f} frames/s')
    lines.append('')
  notes = table_notes(results, code='`')
  if notes:
    lines += ['## Not computed / n/a', '']
    lines += [f'- {key}: {note}' for key, note in notes.items()]
    lines.append('')
  return '\n'.join(lines)


def to_text(results: Mapping[str, ProtocolResult]) -> str:
  """A compact console table, with the extras and the same notes as the markdown."""
  lines = []
  for name, result in results.items():
    columns = COLUMNS.get(name, tuple(result.metrics))
    cells = [cell(c, result.metrics[c]) for c in columns]
    widths = [max(len(c) + 2, len(v)) for c, v in zip(columns, cells)]
    lines.append(f'{TITLES.get(name, name)}:')
    lines.append('  ' + '  '.join(f'{c} {ARROWS.get(c, "")}'.ljust(w)
                                  for c, w in zip(columns, widths)))
    lines.append('  ' + '  '.join(v.ljust(w) for v, w in zip(cells, widths)))
    lines += [f'  {key}: {extra_value(key, entry)}' for key, entry in result.extras.items()]
  notes = table_notes(results)
  if notes:
    lines.append('Not computed / n/a:')
    lines += [f'  {key}: {note}' for key, note in notes.items()]
  return '\n'.join(lines)


def write(workdir: str | os.PathLike, results: Mapping[str, ProtocolResult],
          meta: Mapping[str, Any]) -> tuple[pathlib.Path, pathlib.Path]:
  """Writes `results.json` and `results.md` into `workdir` (atomically); returns their paths."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  paths = workdir / 'results.json', workdir / 'results.md'
  texts = json.dumps(to_json(results, meta), indent=1), to_markdown(results, meta)
  for path, text in zip(paths, texts):
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)
  return paths
