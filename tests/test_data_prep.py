"""data_prep: astronaut face clips -> shards + index; bad clips skipped; reruns add nothing."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

pytest.importorskip('skimage')  # the astronaut clips paste scikit-image's astronaut face

from data_prep import boxes as boxes_lib  # pylint: disable=g-import-not-at-top
from data_prep import layouts
from data_prep import prepare
from data_prep import process_clip
from data_prep import astronaut_clips
from g3fa_jax.data import index as index_lib
from g3fa_jax.data import records
from g3fa_jax.data import source as source_lib
from g3fa_jax.media import crop

SIZE = 64
SETTINGS = process_clip.ClipSettings(size=SIZE)
TEST_ID = 'id00003'


def make_raw(root: pathlib.Path) -> pathlib.Path:
  """4 identities x 2 good clips, plus a truncated, a faceless and a too-short clip."""
  astronaut_clips.make_dataset(root, 'voxceleb2', identities=4, clips=2, num_frames=12, size=96)
  good = root / 'id00000' / 'vid00' / '00001.mp4'
  astronaut_clips.write_truncated_copy(good, root / 'id00010' / 'broken' / '00001.mp4')
  astronaut_clips.write_clip(root / 'id00011' / 'noface' / '00001.mp4',
                             astronaut_clips.face_clip(12, 96, seed=7, face=False), 'voxceleb2')
  astronaut_clips.write_clip(root / 'id00012' / 'short' / '00001.mp4',
                             astronaut_clips.face_clip(4, 96, seed=8), 'voxceleb2')
  return root


@pytest.fixture(scope='module')
def raw(tmp_path_factory) -> pathlib.Path:
  return make_raw(tmp_path_factory.mktemp('raw'))


@pytest.fixture(scope='module')
def prepared(raw, tmp_path_factory) -> tuple[pathlib.Path, prepare.Summary]:
  out = tmp_path_factory.mktemp('prepared')
  summary = prepare.run(str(raw), str(out), settings=SETTINGS, records_per_shard=4,
                        test_identities=[TEST_ID], progress=False)
  return out, summary


def test_shards_and_index_written(prepared):
  out, summary = prepared
  assert summary.layout == 'voxceleb2' and summary.found == 11 and summary.processed == 11
  assert summary.written == {'train': 6, 'test': 2}
  names = sorted(p.name for p in out.iterdir())
  assert {'index.json', 'prep_config.json', 'train-00000.array_record', 'train-00000.json',
          'train-00001.array_record', 'test-00000.array_record'} <= set(names)
  assert not [n for n in names if n.endswith('.tmp')]
  index = index_lib.load_index(out)
  assert index['frame_size'] == [SIZE, SIZE] and index['encoding'] == 'jpeg'
  train, test = index_lib.load_split(out, 'train'), index_lib.load_split(out, 'test')
  assert train.num_records == 6 and train.shard_sizes == (4, 2)
  assert test.num_records == 2 and test.identities == (TEST_ID,)
  assert not set(train.identities) & set(test.identities)  # identity-disjoint
  clips = source_lib.ClipSource(train.shard_paths)
  for i in range(len(clips)):
    record = clips[i]
    assert record['identity'] == train.identities[train.record_identity[i]]
    assert record['num_frames'] == 12 == len(record['frames']) == train.record_frames[i]
    assert record['fps'] == 25.0 and record['source_size'] == [96, 96]
    assert record['source'] == record['key'] + '.mp4'
    x0, y0, x1, y1 = record['box']
    assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 96
    assert abs((x1 - x0) - (y1 - y0)) < 3e-3  # square (rounded to 1e-3)
    frames = clips.read_frames(i, [0, 11])
    assert frames.shape == (2, SIZE, SIZE, 3) and frames.dtype == np.uint8


def test_bad_clips_reported_and_skipped(prepared):
  out, summary = prepared
  reasons = {s['key']: s['reason'] for s in summary.skipped}
  assert reasons == {'id00010/broken/00001': 'unreadable', 'id00011/noface/00001': 'no face',
                     'id00012/short/00001': 'too short'}
  assert summary.skipped_by_reason() == {'unreadable': 1, 'no face': 1, 'too short': 1}
  text = summary.text(out)
  assert 'skipped: 3' in text and 'id00011/noface/00001.mp4' in text
  index = index_lib.load_index(out)
  assert {s['key'] for s in index['skipped']} == set(reasons)
  all_ids = {i for s in index['splits'].values() for i in s['identities']}
  assert not all_ids & {'id00010', 'id00011', 'id00012'}


def test_rerun_adds_nothing(prepared, raw):
  out, _ = prepared
  before = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith('skipped')}
  summary = prepare.run(str(raw), str(out), settings=SETTINGS, records_per_shard=4,
                        test_identities=[TEST_ID], progress=False)
  assert summary.already_done == 11 and summary.processed == 0 and not summary.shards_written
  after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith('skipped')}
  assert after == before


def test_resume_cleans_interrupted_run_and_adds_only_new(raw, tmp_path):
  out = tmp_path / 'out'
  first = prepare.run(str(raw), str(out), settings=SETTINGS, records_per_shard=100,
                      test_identities=[TEST_ID], progress=False, limit=3)
  assert first.written == {'train': 3}
  # What a crash leaves behind: a half-written shard and a shard whose manifest never came.
  (out / 'train-00001.array_record.tmp').write_bytes(b'partial')
  (out / 'train-00002.array_record').write_bytes(b'no manifest')
  second = prepare.run(str(raw), str(out), settings=SETTINGS, records_per_shard=100,
                       test_identities=[TEST_ID], progress=False)
  assert sorted(second.removed_unfinished) == ['train-00001.array_record.tmp',
                                               'train-00002.array_record']
  assert second.already_done == 3 and second.processed == 8
  keys = [r['key'] for m in prepare.shards.read_manifests(out) for r in m['records']]
  assert len(keys) == len(set(keys)) == 8
  assert index_lib.load_split(out, 'train').num_records == 6


def test_rerun_with_other_settings_is_refused_naming_the_field(prepared, raw, capsys):
  out, _ = prepared
  with pytest.raises(ValueError, match='other settings') as info:
    prepare.run(str(raw), str(out), settings=process_clip.ClipSettings(size=SIZE + 8),
                test_identities=[TEST_ID], progress=False)
  message = str(info.value)
  assert f'(size: was {SIZE}, now {SIZE + 8});' in message and len(message) < 250, message
  # Two changed fields on the command line, one of them outside the clip settings.
  rc = prepare.main(['--input', str(raw), '--output', str(out), '--size', str(SIZE),
                     '--encoding', 'png', '--test-identities', 'id00001', '--no-progress'])
  err = capsys.readouterr().err.strip()
  assert rc == 2 and len(err.splitlines()) == 1
  assert "encoding: was 'jpeg', now 'png'" in err
  assert "test_identities: was ['id00003'], now ['id00001']" in err and len(err) < 400, err


def test_worker_processes_write_the_same_records(prepared, raw, tmp_path):
  out, _ = prepared
  parallel = prepare.run(str(raw), str(tmp_path), settings=SETTINGS, records_per_shard=4,
                         test_identities=[TEST_ID], progress=False, workers=2)
  assert parallel.written == {'train': 6, 'test': 2} and len(parallel.skipped) == 3
  for name in ('train-00000.array_record', 'train-00001.array_record', 'test-00000.array_record'):
    assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_cli_and_given_boxes(raw, tmp_path, capsys):
  boxes_file = tmp_path / 'boxes.json'
  boxes_file.write_text(json.dumps({'vid00/00002': [30, 30, 60, 66]}))
  out = tmp_path / 'out'
  rc = prepare.main(['--input', str(raw / 'id00001'), '--output', str(out), '--layout', 'flat',
                     '--size', '32', '--encoding', 'png', '--boxes', str(boxes_file),
                     '--identity-regex', r'^(.+)$', '--no-progress', '--no-face-check',
                     '--test-fraction', '0', '--no-compile-cache'])
  assert rc == 0
  text = capsys.readouterr().out
  assert '2 clips found (layout flat)' in text and 'boxes: 1 of 1 given boxes match' in text
  clips = source_lib.ClipSource.from_dir(out, 'train')
  by_key = {clips[i]['key']: clips[i] for i in range(len(clips))}
  given = by_key['vid00/00002']
  np.testing.assert_allclose(given['box'], crop.square_crop([30, 30, 60, 66], (96, 96), 0.3),
                             atol=1e-3)
  assert given['encoding'] == 'png'
  assert records.decode_image(given['frames'][0]).shape == (32, 32, 3)
  boxes_file.write_text(json.dumps({'nope': [30, 30, 60, 66]}))
  with pytest.raises(ValueError, match='none of its 1 boxes'):
    prepare.run(str(raw / 'id00001'), str(tmp_path / 'o2'), layout='flat',
                boxes_file=str(boxes_file), progress=False)


def test_layouts(tmp_path):
  astronaut_clips.make_dataset(tmp_path / 'flat', 'flat', identities=2, clips=2, num_frames=2,
                               size=32)
  layout, clips = layouts.find_clips(tmp_path / 'flat')
  assert layout == 'flat' and [c.identity for c in clips] == ['id00000vid00'] * 2 + [
      'id00001vid00'] * 2
  astronaut_clips.make_dataset(tmp_path / 'fomm' / 'train', 'frames', identities=2, clips=1,
                               num_frames=3, size=32)
  layout, clips = layouts.find_clips(tmp_path / 'fomm')
  assert layout == 'frames' and len(clips) == 2
  assert clips[0].identity == 'id00000' and clips[0].split == 'train' and clips[0].kind == 'frames'
  assert len(list(layouts.iter_frames(clips[0]))) == 3
  frames = astronaut_clips.face_clip(2, 32)
  astronaut_clips.write_clip(tmp_path / 'vox2' / 'dev' / 'mp4' / 'id00001' / 'v' / '00001.mp4',
                             frames, 'voxceleb2')
  astronaut_clips.write_clip(tmp_path / 'vox2' / 'test' / 'mp4' / 'id00009' / 'v' / '00001.mp4',
                             frames, 'voxceleb2')
  layout, clips = layouts.find_clips(tmp_path / 'vox2')
  assert layout == 'voxceleb2'
  assert [(c.identity, c.split) for c in clips] == [('id00001', 'train'), ('id00009', 'test')]
  assert prepare.assign_split(clips[1], prepare.identity_splits(clips, 0.0)) == 'test'


def test_square_crop_stays_in_frame():
  box = crop.square_crop([90, 10, 110, 40], (100, 120), increase=0.5)
  side = box[2] - box[0]
  assert side == pytest.approx(60) and box[3] - box[1] == pytest.approx(side)
  assert box[0] >= 0 and box[2] <= 120 and box[1] >= 0 and box[3] <= 100
  big = crop.square_crop([0, 0, 500, 500], (100, 120))
  assert big[2] - big[0] == pytest.approx(100) and big[2] <= 120


def test_boxes_file_formats(tmp_path):
  csv_file = tmp_path / 'b.csv'
  csv_file.write_text('key,x0,y0,x1,y1\na/b,1,2,3,4\n')
  assert boxes_lib.load_boxes(csv_file) == {'a/b': [1.0, 2.0, 3.0, 4.0]}
  np.testing.assert_allclose(boxes_lib.to_pixels([0.1, 0.2, 0.5, 0.6], (100, 200), True),
                             [20, 20, 100, 60])
