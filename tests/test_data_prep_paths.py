"""data_prep.prepare refuses bad --input / --output paths in one line, before any work, and
creates nothing when it does."""

from __future__ import annotations

import pytest

from data_prep import layouts
from data_prep import prepare


def run_cli(capsys, *argv: str) -> tuple[int, str]:
  rc = prepare.main(list(argv) + ['--no-progress'])
  err = capsys.readouterr().err.strip()
  return rc, err


def one_line_error(err: str) -> str:
  lines = err.splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), err
  return lines[0]


def test_output_naming_a_file_is_refused(tmp_path, capsys):
  (tmp_path / 'in').mkdir()
  (tmp_path / 'in' / 'a_1.mp4').write_bytes(b'x')
  target = tmp_path / 'shards.txt'
  target.write_text('keep me')
  rc, err = run_cli(capsys, '--input', str(tmp_path / 'in'), '--output', str(target))
  assert rc == 2 and 'is a file, not a folder' in one_line_error(err)
  assert target.read_text() == 'keep me'


def test_output_under_a_file_is_refused(tmp_path, capsys):
  (tmp_path / 'in').mkdir()
  (tmp_path / 'in' / 'a_1.mp4').write_bytes(b'x')
  (tmp_path / 'file').write_text('')
  rc, err = run_cli(capsys, '--input', str(tmp_path / 'in'), '--output',
                    str(tmp_path / 'file' / 'sub' / 'out'))
  assert rc == 2 and f'{tmp_path / "file"} is a file, not a folder' in one_line_error(err)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['file', 'in']


def test_missing_input_creates_no_output_folder(tmp_path, capsys):
  rc, err = run_cli(capsys, '--input', str(tmp_path / 'nope'), '--output',
                    str(tmp_path / 'out' / 'nested'))
  assert rc == 2 and 'input folder does not exist' in one_line_error(err)
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('layout,expects', [
    ('auto', 'no video file and no folder of frame images'),
    ('voxceleb2', 'layout voxceleb2 (asked), which expects id*/<video>/<clip>.mp4'),
    ('flat', 'layout flat (asked), which expects video files (.mp4'),
    ('frames', 'layout frames (asked), which expects folders of frame images'),
])
def test_empty_input_folder_is_an_error(tmp_path, capsys, layout, expects):
  (tmp_path / 'empty' / 'sub').mkdir(parents=True)
  (tmp_path / 'empty' / 'notes.txt').write_text('no clips here')
  rc, err = run_cli(capsys, '--input', str(tmp_path / 'empty'), '--output',
                    str(tmp_path / 'out'), '--layout', layout)
  line = one_line_error(err)
  assert rc == 2 and 'no clips found' in line and expects in line, line
  assert not (tmp_path / 'out').exists()


def test_clips_of_another_layout_name_what_was_expected(tmp_path):
  (tmp_path / 'in').mkdir()
  (tmp_path / 'in' / 'speaker_1.mp4').write_bytes(b'x')  # a flat folder, read as voxceleb2
  with pytest.raises(ValueError, match=r'layout voxceleb2 \(asked\)'):
    prepare.run(str(tmp_path / 'in'), str(tmp_path / 'out'), layout='voxceleb2', progress=False)
  assert not (tmp_path / 'out').exists()
  assert layouts.find_clips(tmp_path / 'in', 'flat')[1][0].identity == 'speaker'


def test_other_data_prep_outputs_naming_a_file_are_refused(tmp_path, capsys):
  from data_prep import synthetic  # pylint: disable=g-import-not-at-top
  target = tmp_path / 'taken'
  target.write_text('keep me')
  assert synthetic.main(['--out', str(target), '--videos', '2']) == 2
  assert 'is a file, not a folder' in one_line_error(capsys.readouterr().err.strip())
  tfds_dataset = pytest.importorskip('data_prep.tfds_dataset')
  assert tfds_dataset.main(['--shards', str(tmp_path / 'shards'), '--data-dir',
                            str(target)]) == 2
  assert '--data-dir' in one_line_error(capsys.readouterr().err.strip())
  assert target.read_text() == 'keep me'
