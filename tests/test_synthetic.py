"""Synthetic talking heads: rendered geometry is consistent and follows the specified pose and
expression; the CLI writes shards that the training pipeline reads."""

from __future__ import annotations

import dataclasses
import json

import grain
import jax.numpy as jnp
import numpy as np
import pytest

from data_prep import synthetic as synthetic_prep
from g3fa_jax.data import pipeline
from g3fa_jax.data import records
from g3fa_jax.data import source as source_lib
from g3fa_jax.models import inverse_renderer
from g3fa_jax.synthetic import camera
from g3fa_jax.synthetic import clips
from g3fa_jax.synthetic import dataset
from g3fa_jax.synthetic import factors
from g3fa_jax.synthetic import landmarks
from g3fa_jax.synthetic import pose
from g3fa_jax.synthetic import render
from g3fa_jax.synthetic import sdf

SIZE = 48
T = 4  # every render here has this many frames at SIZE: the renderer compiles once
# (yaw, pitch, roll) of the four test frames.
ANGLES = np.array([[-40., 0., 0.], [0., 0., 0.], [40., 0., 0.], [0., 20., 0.]], np.float32)


def specified_frames(mouth: float = 0., blink: float = 0.) -> tuple[clips.Clip, clips.Frames]:
  """Identity 0's clip 0 with the poses ANGLES, no pivot offset, straight gaze."""
  clip = clips.make_clip(0, 0, 0, T)
  zeros = np.zeros(T, np.float32)
  frames = clips.posed_frames(clip.frames, ANGLES).replace(
      translation=np.zeros((T, 3), np.float32), mouth=zeros + mouth, blink=zeros + blink,
      gaze=np.zeros((T, 2), np.float32))
  return clip, frames


def render_np(identity, frames) -> dict[str, np.ndarray]:
  out = render.render_frames(identity, frames, size=SIZE)
  return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope='module')
def posed():
  clip, frames = specified_frames()
  return clip, frames, render_np(clip.identity, frames)


def rays() -> np.ndarray:
  return camera.ray_directions(SIZE).reshape(SIZE, SIZE, 3)


def test_outputs_shapes_and_ranges(posed):
  _, _, out = posed
  assert out['image'].shape == (T, SIZE, SIZE, 3) and out['depth'].shape == (T, SIZE, SIZE, 1)
  assert out['normal'].shape == (T, SIZE, SIZE, 3) and out['mask'].shape == (T, SIZE, SIZE, 1)
  assert all(v.dtype == np.float32 for v in out.values())
  assert out['image'].min() >= 0 and out['image'].max() <= 1
  assert set(np.unique(out['mask'])) == {0., 1.}
  coverage = out['mask'].mean(axis=(1, 2, 3))
  assert np.all((coverage > 0.2) & (coverage < 0.8)), coverage


def test_depth_agrees_with_silhouette(posed):
  _, _, out = posed
  fg = out['mask'][..., 0] > 0
  depth = out['depth'][..., 0]
  np.testing.assert_array_equal(dataset.foreground_mask(depth), fg)
  assert np.all(depth[~fg] == np.float32(camera.BACKGROUND_DEPTH))
  np.testing.assert_array_equal(out['normal'][~fg], np.broadcast_to([0., 0., 1.], (np.sum(~fg), 3)))
  # The visible head lies in front of the background, inside Unsup3D's depth range.
  assert depth[fg].min() > 0.88 and depth[fg].max() < camera.BACKGROUND_DEPTH - 1e-3
  # The head is framed like a talking-head crop: the shoulders touch the bottom edge, the hair
  # stays below the top one.
  assert not fg[:, 0].any() and fg[:, -1].any()


def test_normals_unit_and_facing_the_camera(posed):
  _, _, out = posed
  normal = out['normal']
  np.testing.assert_allclose(np.linalg.norm(normal, axis=-1), 1., atol=1e-5)
  fg = out['mask'][..., 0] > 0
  # Unsup3D's convention (n_z > 0 faces the camera): every visible normal points back along its
  # pixel's ray, toward the camera ...
  facing = np.sum(normal * rays()[None], axis=-1)
  assert facing[fg].min() > 0
  # ... so n_z > 0 except, at most, on silhouette pixels seen off-axis.
  assert np.mean(normal[..., 2][fg] > 0) > 0.99
  assert np.median(normal[..., 2][fg]) > 0.7


def test_normals_match_unsup3d_normals_of_the_depth(posed):
  """The ground-truth normals speak Unsup3D's convention: its depth->normal formula agrees."""
  _, _, out = posed
  depth = out['depth'][..., 0]
  derived = np.asarray(inverse_renderer.normals_from_depth(jnp.asarray(depth),
                                                           camera.FOV_DEGREES))
  fg = out['mask'][..., 0] > 0
  inner = fg.copy()  # pixels whose four neighbours are foreground too
  inner[:, 1:-1, 1:-1] &= fg[:, :-2, 1:-1] & fg[:, 2:, 1:-1] & fg[:, 1:-1, :-2] & fg[:, 1:-1, 2:]
  inner[:, [0, -1]] = False
  inner[:, :, [0, -1]] = False
  cosine = np.sum(derived * out['normal'], axis=-1)[inner]
  assert np.median(cosine) > 0.99
  assert np.mean(cosine > 0.9) > 0.85


def nose_tip_camera(clip: clips.Clip, frames: clips.Frames, f: int) -> np.ndarray:
  """Camera-frame position of the front of the nose tip as specified by frame f's pose."""
  ident = clip.identity
  tip = np.asarray(sdf.nose_tip(ident)) + [0., 0., -0.11 * float(ident.nose[1])]
  scale = camera.HEAD_SCALE * float(ident.scale)
  pivot = np.asarray(camera.pivot(jnp.asarray(frames.translation[f]), ident.scale))
  return pivot + scale * frames.rotation[f] @ tip


def rendered_nose_tip(out: dict[str, np.ndarray], f: int, predicted: np.ndarray) -> np.ndarray:
  """Back-projected nearest surface point within 3 pixels of the predicted tip's projection."""
  u, v = np.round(np.asarray(camera.project(jnp.asarray(predicted), SIZE))).astype(int)
  window = out['depth'][f, v - 3:v + 4, u - 3:u + 4, 0]
  dv, du = np.unravel_index(np.argmin(window), window.shape)
  row, col = v - 3 + dv, u - 3 + du
  return out['depth'][f, row, col, 0] * rays()[row, col]


def test_head_pose_follows_the_specified_angles(posed):
  clip, frames, out = posed
  pivot = np.asarray(camera.pivot(jnp.zeros(3), clip.identity.scale))
  rest = nose_tip_camera(clip, clips.posed_frames(frames, np.zeros((T, 3))), 0) - pivot
  estimates = []
  for f in range(T):
    predicted = nose_tip_camera(clip, frames, f)
    found = rendered_nose_tip(out, f, predicted)
    # The rendered nose is where the specified pose puts it (to within a pixel or two).
    assert np.linalg.norm(found - predicted) < 0.15 * camera.HEAD_SCALE * 1.5, (f, found, predicted)
    d = found - pivot
    yaw = np.degrees(np.arctan2(d[0], -d[2]))
    pitch = np.degrees(np.arctan2(-d[1], -d[2]) - np.arctan2(-rest[1], -rest[2]))
    estimates.append((yaw, pitch))
  estimates = np.array(estimates)
  np.testing.assert_allclose(estimates[:, 0], ANGLES[:, 0], atol=6.)
  np.testing.assert_allclose(estimates[:, 1], ANGLES[:, 1], atol=6.)
  # The forehead's normal turns with the head: yaw from the normal (Unsup3D convention: the
  # outward normal negated) at the forehead's pixel.
  scale = camera.HEAD_SCALE * float(clip.identity.scale)
  yaws = []
  for f in range(T):
    forehead = pivot + scale * frames.rotation[f] @ np.array([0., -0.4, -1.])
    u, v = np.round(np.asarray(camera.project(jnp.asarray(forehead), SIZE))).astype(int)
    n = out['normal'][f, v, u]
    yaws.append(np.degrees(np.arctan2(-n[0], n[2])))
  np.testing.assert_allclose(yaws, ANGLES[:, 0], atol=6.)


def test_expression_opens_mouth_and_closes_eyes(posed):
  clip, frames, out = posed
  _, expressive = specified_frames(mouth=1., blink=1.)
  out2 = render_np(clip.identity, expressive)
  ident = clip.identity
  scale = camera.HEAD_SCALE * float(ident.scale)
  pivot = np.asarray(camera.pivot(jnp.zeros(3), ident.scale))
  f = 1  # frontal
  mouth_centre, _ = sdf.mouth_geometry(ident, jnp.float32(1.))
  eye = np.asarray(sdf.eye_centre(ident)) + [0., 0., -float(ident.eyes[2])]
  # An open mouth is a hole (deeper); a closed eyelid (0.018 thick) covers the eyeball (nearer).
  for point, least_change in ((np.asarray(mouth_centre) + [0., 0., -0.3], 0.05), (eye, -0.01)):
    u, v = np.round(np.asarray(camera.project(jnp.asarray(pivot + scale * point), SIZE))).astype(int)
    change = (out2['depth'][f, v, u, 0] - out['depth'][f, v, u, 0]) / scale
    assert change * np.sign(least_change) > abs(least_change), (point, change)
  assert np.abs(out2['image'][f] - out['image'][f]).max() > 0.2


def test_deterministic_for_a_seed():
  a = clips.make_clip(7, 3, 1, T)
  b = clips.make_clip(7, 3, 1, T)
  c = clips.make_clip(8, 3, 1, T)
  np.testing.assert_array_equal(a.angles, b.angles)
  np.testing.assert_array_equal(a.identity.skin, b.identity.skin)
  assert not np.array_equal(a.angles, c.angles)
  assert not np.array_equal(a.identity.cranium, c.identity.cranium)
  ra, rb = render_np(a.identity, a.frames), render_np(b.identity, b.frames)
  for k in ra:
    np.testing.assert_array_equal(ra[k], rb[k])


def test_motion_curves_reach_strong_turns():
  times = np.arange(32) / clips.FPS
  yaws = np.concatenate([pose.head_motion(np.random.default_rng([0, i]), times)[:, 0]
                         for i in range(200)])
  assert np.abs(yaws).max() <= pose.MAX_YAW
  assert np.mean(np.abs(yaws) > 45.) > 0.05


def test_one_identity_per_clip_and_too_many_identities_refused():
  settings = dataset.Settings(videos=20, identities=-1)
  assert settings.num_identities == 20
  settings.validate()
  assert len(dataset.held_out_identities(settings)) == 2
  with pytest.raises(ValueError, match='identities=-1'):
    dataset.Settings(videos=6, identities=120).validate()


def test_reader_frames_show_new_people_with_their_ground_truth():
  settings = dataset.Settings(videos=20, identities=-1, size=SIZE)
  got = dataset.reader_frames(settings, clips=1, frames_per_clip=T)
  assert got['image'].shape == (T, SIZE, SIZE, 3) and got['angles'].shape == (T, 3)
  assert got['depth'].shape == (T, SIZE, SIZE, 1) and got['normal'].shape == (T, SIZE, SIZE, 3)
  # Rounded to 8 bits, as the stored clips are.
  np.testing.assert_allclose(got['image'] * 255, np.round(got['image'] * 255), atol=1e-3)
  # The clip and person numbered past any data set's: another person than the data set's.
  index = dataset.READER_INDEX_OFFSET
  assert index >= settings.videos
  np.testing.assert_array_equal(got['angles'], clips.make_clip(settings.seed, index, index,
                                                               T).angles)
  data_person = clips.make_clip(settings.seed, 0, 0, T).identity
  reader_person = clips.make_clip(settings.seed, index, index, T).identity
  assert not np.allclose(np.asarray(data_person.skin), np.asarray(reader_person.skin))
  with pytest.raises(ValueError, match='frames_per_clip'):
    dataset.reader_frames(settings, clips=1, frames_per_clip=1)


def test_every_frame_field_is_in_exactly_one_factor_and_held_factors_take_that_frames_values():
  fields = [f.name for f in dataclasses.fields(clips.Frames)]
  grouped = [name for group in factors.FACTORS.values() for name in group]
  assert sorted(grouped) == sorted(fields)
  frames = clips.make_clip(0, 5, 5, T).frames
  own = factors.frames_with(frames, [3, 1], ())
  held = factors.frames_with(frames, [3, 1], ('light', 'mouth'), at=2)
  for name in fields:
    got_own, got_held = np.asarray(getattr(own, name)), np.asarray(getattr(held, name))
    np.testing.assert_array_equal(got_own, np.asarray(getattr(frames, name))[[3, 1]])
    in_held = name in factors.FACTORS['light'] + factors.FACTORS['mouth']
    want = np.asarray(getattr(frames, name))[[2, 2] if in_held else [3, 1]]
    np.testing.assert_array_equal(got_held, want)
  with pytest.raises(ValueError, match="unknown factors \\['lighting'\\]"):
    factors.frames_with(frames, [0], ('lighting',))


def test_rerender_gives_the_stored_frames_back_and_holding_every_factor_gives_the_source():
  settings = dataset.Settings(videos=2, identities=-1, frames=T, size=SIZE, encoding='png')
  record = dataset.render_item(dataset.plan(settings)[1], settings)
  stored = np.stack([records.decode_image(f) for f in record['frames']]).astype(np.float32) / 255.
  indices = list(range(T))
  np.testing.assert_array_equal(factors.rerender(record, indices, ()), stored)
  every = factors.rerender(record, indices, tuple(factors.FACTORS), at=0)
  np.testing.assert_array_equal(every, np.repeat(stored[:1], T, axis=0))
  # The light drifts over the clip: held at frame 0's, the last frame changes, the first does not.
  lit = factors.rerender(record, indices, ('light',), at=0)
  np.testing.assert_array_equal(lit[0], stored[0])
  assert np.abs(lit[-1] - stored[-1]).mean() > 1e-3
  with pytest.raises(ValueError, match='not a synthetic clip'):
    factors.rerender({k: v for k, v in record.items() if k != 'synthetic'}, indices, ())


def test_split_is_identity_disjoint():
  settings = dataset.Settings(videos=60, identities=20)
  items = dataset.plan(settings)
  train = {i.identity_index for i in items if i.split == 'train'}
  test = {i.identity_index for i in items if i.split == 'test'}
  assert not train & test and len(test) == 2 and len(train) == 18


def test_cli_writes_shards_the_pipeline_reads(tmp_path, capsys):
  out = tmp_path / 'synth'
  argv = ['--out', str(out), '--videos', '4', '--frames', str(T), '--size', str(SIZE),
          '--identities', '2', '--workers', '0']
  assert synthetic_prep.main(argv) == 0
  index = json.loads((out / 'index.json').read_text())
  assert index['splits']['train']['identities'] == ['synth00000']
  assert index['splits']['test']['identities'] == ['synth00001']
  assert index['splits']['train']['geometry'] and index['splits']['test']['geometry']

  ds = pipeline.make_pair_dataset(out, global_batch_size=2, seed=0, with_geometry=True,
                                  shard_options=grain.sharding.NoSharding())
  batch = next(iter(ds))
  assert batch['source'].shape == (2, SIZE, SIZE, 3) and batch['source'].dtype == np.float32
  assert batch['source_depth'].shape == (2, SIZE, SIZE, 1)
  assert batch['driving_normal'].shape == (2, SIZE, SIZE, 3)
  # With landmarks, the same pairs (the same draws) carry each frame's facial landmarks.
  ds = pipeline.make_pair_dataset(out, global_batch_size=2, seed=0,
                                  landmarks_of=landmarks.pair_landmarks,
                                  with_record_index=True,
                                  shard_options=grain.sharding.NoSharding())
  marked = next(iter(ds))
  np.testing.assert_array_equal(marked['source'], batch['source'])
  train = source_lib.ClipSource.from_dir(out, 'train')
  for b in range(2):
    per_frame = landmarks.record_landmarks(train[int(marked['record'][b])])
    assert per_frame.shape == (T, len(landmarks.NAMES), 2)
    for name in ('source', 'driving'):
      assert np.min(np.abs(per_frame - marked[f'{name}_landmarks'][b]).max((1, 2))) < 1e-6
  # Flipped frames get the mirrored landmarks (left and right swapped, x negated).
  record = train[int(marked['record'][0])]
  np.testing.assert_array_equal(landmarks.pair_landmarks(record, [2, 0], True),
                                landmarks.mirrored(landmarks.record_landmarks(record)[[2, 0]]))

  # The stored record holds the frames and the ground truth of a direct render.
  record = source_lib.ClipSource.from_dir(out, 'test')[0]
  assert record['key'] == 'synth00001/v00001/00001' and record['num_frames'] == T
  clip = clips.make_clip(0, 1, 1, T)
  direct = render_np(clip.identity, clip.frames)
  depth, normal = dataset.read_geometry(record)
  np.testing.assert_allclose(depth, direct['depth'], atol=1e-5)
  np.testing.assert_allclose(normal, direct['normal'], atol=5e-5)
  frames = source_lib.ClipSource.from_dir(out, 'test').read_frames(0)
  np.testing.assert_allclose(frames / 255., direct['image'], atol=0.5 / 255 + 1e-6)
  np.testing.assert_allclose(record['synthetic']['yaw'], clip.angles[:, 0], atol=1e-3)

  # A rerun with the same settings has nothing left to do; other settings are refused.
  capsys.readouterr()
  assert synthetic_prep.main(argv) == 0
  assert '4 already there, 0 written' in capsys.readouterr().out
  assert synthetic_prep.main(argv[:-4] + ['--identities', '3', '--workers', '0']) == 2
