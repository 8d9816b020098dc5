"""--test-fraction: the test split gets the identity count nearest the fraction, chosen by a
stable hash, and a rerun with more identities moves none of those already written."""

from __future__ import annotations

import random

import numpy as np
import pytest

from data_prep import layouts
from data_prep import prepare
from data_prep import process_clip
from g3fa_jax.data import index as index_lib
from g3fa_jax.media import video_io


def clips_of(identities, clips_per_identity: int = 2) -> list[layouts.ClipSpec]:
  return [layouts.ClipSpec(key=f'{i}_{c}', identity=i, video=i, clip=f'{i}_{c}', path='',
                           source=f'{i}_{c}.mp4', kind='video')
          for i in identities for c in range(clips_per_identity)]


def num_test(plan: dict[str, str]) -> int:
  return sum(s == 'test' for s in plan.values())


@pytest.mark.parametrize('count,fraction,expected', [
    (5, 0.1, 1), (5, 0.5, 3), (4, 0.1, 0), (10, 0.1, 1), (15, 0.1, 2), (20, 0.25, 5),
    (37, 0.1, 4), (3, 1.0, 3), (6, 0.0, 0)])
def test_fraction_hit_as_closely_as_the_count_allows(count, fraction, expected):
  identities = [f'speaker{i:02d}' for i in range(count)]
  plan = prepare.identity_splits(clips_of(identities), fraction)
  assert set(plan) == set(identities) and num_test(plan) == expected
  shuffled = clips_of(identities)
  random.Random(0).shuffle(shuffled)
  assert prepare.identity_splits(shuffled, fraction) == plan  # the input order does not matter


def test_adding_identities_moves_none_and_keeps_the_fraction():
  first = [f'speaker{i:02d}' for i in range(10)]
  plan = prepare.identity_splits(clips_of(first), 0.2)
  assert num_test(plan) == 2
  more = first + [f'late{i:02d}' for i in range(10)]
  grown = prepare.identity_splits(clips_of(more), 0.2, written=plan)
  assert {i: grown[i] for i in first} == plan and num_test(grown) == 4
  # Named and predefined splits count towards the fraction; they are not redrawn.
  named = prepare.identity_splits(clips_of(first), 0.2, test_identities=['speaker03', 'x'])
  assert named['speaker03'] == 'test' and num_test(named) == 2 and 'x' not in named


def test_prepare_splits_ten_identities_one_to_test_and_resumes_stably(tmp_path):
  rng = np.random.default_rng(0)
  raw = tmp_path / 'raw'

  def add(names):
    for name in names:
      video_io.write_video(raw / f'{name}_1.mp4', rng.integers(0, 256, (8, 16, 16, 3), np.uint8))

  raw.mkdir()
  add([f'speaker{i:02d}' for i in range(10)])
  settings = process_clip.ClipSettings(size=16, crop='full', face_check=False)
  out = tmp_path / 'out'
  prepare.run(str(raw), str(out), layout='flat', settings=settings, test_fraction=0.1,
              progress=False)
  test = index_lib.load_split(out, 'test')
  assert len(test.identities) == 1 and len(index_lib.load_split(out, 'train').identities) == 9
  add([f'late{i:02d}' for i in range(10)])
  prepare.run(str(raw), str(out), layout='flat', settings=settings, test_fraction=0.1,
              progress=False)
  train2, test2 = index_lib.load_split(out, 'train'), index_lib.load_split(out, 'test')
  assert set(test.identities) <= set(test2.identities) and len(test2.identities) == 2
  assert len(train2.identities) == 18 and not set(train2.identities) & set(test2.identities)
