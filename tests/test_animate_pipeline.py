"""Animation end to end on a tiny random checkpoint: `Animator.animate`, the CLI with test-made
clips (frame count, frame rate, audio kept), face cropping, clear errors, and the notebook."""

from __future__ import annotations

import fractions
import json
import os
import pathlib

import av
import jax
import numpy as np
import pytest
from PIL import Image

from conftest import TINY_SIZE as SIZE
from conftest import describe, make_clip
from g3fa_jax.animate import __main__ as cli
from g3fa_jax.animate import pipeline
NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / 'notebooks' / 'animate.ipynb'


def make_truncated_clip(path, num_frames: int = 30) -> pathlib.Path:
  """A faststart mp4 (index at the front) of noise frames, cut to its first half: its frames
  decode until the cut without an error from FFmpeg's threaded decoder."""
  whole = pathlib.Path(path).with_name('whole-' + pathlib.Path(path).name)
  with av.open(str(whole), 'w', options={'movflags': 'faststart'}) as container:
    stream = container.add_stream('libx264', rate=25)
    stream.width = stream.height = SIZE
    stream.pix_fmt = 'yuv420p'
    rng = np.random.default_rng(0)
    for _ in range(num_frames):
      frame = rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
    container.mux(stream.encode(None))
  data = whole.read_bytes()
  pathlib.Path(path).write_bytes(data[:len(data) // 2])
  return pathlib.Path(path)


@pytest.fixture(scope='module')
def media(tmp_path_factory) -> dict[str, pathlib.Path]:
  root = tmp_path_factory.mktemp('media')
  source = np.zeros((SIZE, SIZE, 3), np.uint8)
  source[16:48, 16:48] = (200, 160, 140)
  Image.fromarray(source).save(root / 'source.png')
  (root / 'broken.mp4').write_text('not a video')
  (root / 'broken.png').write_bytes(b'\x89PNG garbage')
  Image.fromarray(np.full((96, 96, 3), 127, np.uint8)).save(root / 'flat.png')
  return {'root': root, 'source': root / 'source.png',
          'aac': make_clip(root / 'aac.mp4', 12, 25),
          'pcm': make_clip(root / 'pcm.mkv', 9, 15, audio_codec='pcm_s16le'),
          'broken_video': root / 'broken.mp4', 'broken_image': root / 'broken.png',
          'truncated': make_truncated_clip(root / 'truncated.mp4'),
          'flat': root / 'flat.png'}


def _frames(num: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).random((num, SIZE, SIZE, 3), dtype=np.float32)


def test_animate_relative_and_absolute(animator):
  source = _frames(1, 0)[0]
  driving = _frames(5, 1)
  frames = animator.animate(source, driving, initial_frame=2, batch_size=3)
  assert frames.shape == (5, SIZE, SIZE, 3) and frames.dtype == np.float32
  # Batching (with a padded last batch) does not change the frames.
  np.testing.assert_allclose(animator.animate(source, driving, initial_frame=2, batch_size=1),
                             frames, atol=1e-4)
  # Relative motion maps the reference frame's keypoints exactly onto the source's.
  kp_source = animator.keypoints(source)
  np.testing.assert_allclose(
      frames[2], np.asarray(animator.generate(source, kp_source, kp_source)['prediction'][0]),
      atol=1e-4)
  # Absolute motion: the driving keypoints as they are; uint8 frames are accepted.
  driving_uint8 = np.round(driving * 255).astype(np.uint8)
  absolute = animator.animate(source, driving_uint8, relative=False, batch_size=5)
  kp_driving = animator.keypoints(driving_uint8.astype(np.float32) / 255)
  expected = animator.generate(np.repeat(source[None], 5, 0),
                               jax.tree_util.tree_map(lambda x: np.repeat(x, 5, 0), kp_source),
                               kp_driving)['prediction']
  np.testing.assert_allclose(absolute, np.asarray(expected), atol=1e-4)
  with pytest.raises(ValueError, match='differ from the source'):
    animator.animate(source, _frames(2, 2)[:, :32, :32])


def test_frames_per_pass_gives_the_same_frames(animator):
  """A batch computed one frame at a time inside the device call (the CPU default) or all at once
  gives the same frames; a negative count is refused."""
  from g3fa_jax.inference.animator import Animator  # pylint: disable=g-import-not-at-top
  source, driving = _frames(1, 3)[0], _frames(4, 4)
  whole = Animator(animator.config, animator.kp_detector_variables,
                   animator.generator_variables, frames_per_pass=0)
  pairs = Animator(animator.config, animator.kp_detector_variables,
                   animator.generator_variables, frames_per_pass=2)
  expected = whole.animate(source, driving, batch_size=4)
  np.testing.assert_allclose(pairs.animate(source, driving, batch_size=4), expected, atol=1e-4)
  np.testing.assert_allclose(animator.animate(source, driving, batch_size=4), expected, atol=1e-4)
  with pytest.raises(ValueError, match='frames_per_pass'):
    Animator(animator.config, animator.kp_detector_variables, animator.generator_variables,
             frames_per_pass=-1)


def test_animators_of_one_config_share_compiled_programs_and_keep_their_own_weights(
    checkpoints, animator):
  """The main job builds an Animator per checkpoint to evaluate it: a second Animator of the same
  config (built in memory or restored again) must not compile again, yet use its own weights."""
  from g3fa_jax.inference import animator as animator_lib  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=protected-access
  jitted = (animator_lib._detect_keypoints, animator_lib._generate)
  source, driving = _frames(2, 5), _frames(2, 6)
  first = animator.reconstruct(source, driving)
  compiled = [f._cache_size() for f in jitted]  # pylint: disable=protected-access
  halved = jax.tree_util.tree_map(lambda x: x * 0.5, animator.generator_variables)
  other = animator_lib.Animator(animator.config, animator.kp_detector_variables, halved)
  second = other.reconstruct(source, driving)
  again = animator_lib.Animator.from_checkpoint(checkpoints['g3fa']).reconstruct(source, driving)
  assert [f._cache_size() for f in jitted] == compiled  # pylint: disable=protected-access
  np.testing.assert_array_equal(again['prediction'], first['prediction'])
  assert np.abs(second['prediction'] - first['prediction']).max() > 1e-3


def test_frames_per_pass_from_a_checkpoint_and_one_that_does_not_divide_the_batch(checkpoints,
                                                                                 animator):
  from g3fa_jax.inference.animator import Animator  # pylint: disable=g-import-not-at-top
  source, driving = _frames(1, 3)[0], _frames(4, 4)
  restored = Animator.from_checkpoint(checkpoints['g3fa'], frames_per_pass=3)
  assert restored.frames_per_pass == 3
  # 3 does not divide 4: the batch goes in passes of gcd(4, 3) = 1 frame, same frames.
  np.testing.assert_allclose(restored.animate(source, driving, batch_size=4),
                             animator.animate(source, driving, batch_size=4), atol=1e-4)


def test_cli_keeps_frame_count_fps_and_audio(media, checkpoints, tmp_path, capsys):
  out = tmp_path / 'out.mp4'
  rc = cli.main(['--checkpoint', str(checkpoints['g3fa']), '--source', str(media['source']),
                 '--driving', str(media['aac']), '--out', str(out), '--no-crop', '--quiet',
                 '--batch-size', '5'])
  assert rc == 0, capsys.readouterr().err
  info = describe(out)
  assert info['frames'] == 12 and info['fps'] == 25 and info['size'] == (SIZE, SIZE)
  codec, seconds = info['audio']
  assert codec == 'aac' and abs(seconds - 12 / 25) < 0.07
  assert 'with the driving audio' in capsys.readouterr().out


def test_side_by_side_depth_normal_best_frame_and_reencoded_audio(media, checkpoints, animator,
                                                                  tmp_path):
  out = tmp_path / 'panels.mp4'
  options = pipeline.AnimateOptions(
      checkpoint=str(checkpoints['g3fa']), source=str(media['source']),
      driving=str(media['pcm']), out=str(out), crop=False, side_by_side=True,
      inverse_renderer=str(checkpoints['unsup3d']), find_best_frame=True,
      best_frame_by='keypoints', max_frames=7, batch_size=4, progress=False)
  result = pipeline.run(options, animator=animator, log=lambda _: None)
  assert result.num_frames == 7 and result.audio_kept and 0 <= result.initial_frame < 7
  info = describe(out)
  # source | driving | result | depth | normal; 15 fps; the PCM audio re-encoded, cut to 7 frames.
  assert info['frames'] == 7 and info['fps'] == 15 and info['size'] == (SIZE, 5 * SIZE)
  codec, seconds = info['audio']
  assert codec == 'aac' and abs(seconds - 7 / 15) < 0.1


def test_best_frame_names_the_reference_frame(media, checkpoints, animator, tmp_path):
  options = pipeline.AnimateOptions(
      checkpoint=str(checkpoints['g3fa']), source=str(media['source']), driving=str(media['aac']),
      out=str(tmp_path / 'out.mp4'), crop=False, best_frame=5, max_frames=8, audio=False,
      batch_size=4, progress=False)
  assert pipeline.run(options, animator=animator, log=lambda _: None).initial_frame == 5
  with pytest.raises(SystemExit):  # argparse: one or the other
    cli.parse_args(['--checkpoint', 'c', '--source', 's', '--driving', 'd', '--out', 'o',
                    '--find-best-frame', '--best-frame', '3'])


def test_face_crop_paste_back_and_best_frame(animator, checkpoints, tmp_path):
  skimage_data = pytest.importorskip('skimage.data')
  portrait = Image.fromarray(skimage_data.astronaut()).resize((256, 256))
  portrait.save(tmp_path / 'portrait.png')
  # The driving clip: the same face turned; frame 3 is upright like the source.
  driving = tmp_path / 'turning.mp4'
  with av.open(str(driving), 'w') as container:
    stream = container.add_stream('libx264', rate=10)
    stream.width, stream.height, stream.pix_fmt = 256, 192, 'yuv420p'
    for angle in (-12, -8, -4, 0, 4, 8):
      frame = np.asarray(portrait.rotate(angle, translate=(20, 0)))[16:208]
      container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame),
                                                            format='rgb24')))
    container.mux(stream.encode(None))
  out = tmp_path / 'pasted.mp4'
  options = pipeline.AnimateOptions(
      checkpoint=str(checkpoints['g3fa']), source=str(tmp_path / 'portrait.png'),
      driving=str(driving), out=str(out), paste_back=True, find_best_frame=True,
      batch_size=6, progress=False)
  result = pipeline.run(options, animator=animator, log=lambda _: None)
  assert result.initial_frame == 3 and not result.audio_kept
  info = describe(out)
  assert info['frames'] == 6 and info['fps'] == 10 and info['size'] == (256, 256)
  with av.open(str(out)) as container:
    first = next(container.decode(video=0)).to_ndarray(format='rgb24').astype(np.float32)
  # Pasted back: away from the face the frame is the source portrait (up to H.264 / yuv420 loss),
  # on the face it is not.
  portrait = np.asarray(portrait, np.float32)
  assert np.mean(np.abs(first[160:] - portrait[160:])) < 4
  assert np.mean(np.abs(first[50:80, 100:130] - portrait[50:80, 100:130])) > 10


@pytest.mark.parametrize('case,message', [
    ('broken_video', 'broken.mp4: not a readable video'),
    ('empty_recording', 'sample.webm: not a readable video: 1 byte, an empty or cut-off upload'),
    ('broken_image', 'broken.png: not a readable image'),
    ('truncated', 'truncated.mp4: the file ends early: decoding stopped after frame'),
    ('missing', 'missing.mp4: no such file'),
    ('no_face', 'flat.png: no face found'),
    ('wrong_checkpoint', 'has no kp_detector, generator (it holds unsup3d)'),
    ('not_a_checkpoint', 'not a g3fa-jax checkpoint'),
    ('pth_file', 'is a file, not an orbax checkpoint directory'),
    ('best_frame_past_the_end', '--best-frame 12: '),
])
def test_clear_errors(case, message, media, checkpoints, tmp_path, capsys):
  args = {'--checkpoint': str(checkpoints['g3fa']), '--source': str(media['source']),
          '--driving': str(media['aac']), '--out': str(tmp_path / 'out.mp4')}
  extra = ['--no-crop']
  if case == 'broken_video':
    args['--driving'] = str(media['broken_video'])
  elif case == 'empty_recording':  # what a browser starved of CPU can upload from the webcam
    args['--driving'] = str(tmp_path / 'sample.webm')
    (tmp_path / 'sample.webm').write_bytes(b'\x1a')
  elif case == 'truncated':
    args['--driving'] = str(media['truncated'])
  elif case == 'broken_image':
    args['--source'] = str(media['broken_image'])
  elif case == 'missing':
    args['--driving'] = str(media['root'] / 'missing.mp4')
  elif case == 'no_face':
    args['--source'], extra = str(media['flat']), []
  elif case == 'wrong_checkpoint':
    args['--checkpoint'] = str(checkpoints['unsup3d'])
  elif case == 'not_a_checkpoint':
    args['--checkpoint'] = str(media['root'])
  elif case == 'pth_file':
    args['--checkpoint'] = str(media['broken_video'])
  elif case == 'best_frame_past_the_end':
    extra += ['--best-frame', '12']
  argv = [item for pair in args.items() for item in pair] + extra + ['--quiet']
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert err.startswith('error: ') and message in err
  assert not (tmp_path / 'out.mp4').exists()


def test_notebook_runs_top_to_bottom(media, checkpoints, tmp_path, monkeypatch):
  nbformat = pytest.importorskip('nbformat')
  nbclient = pytest.importorskip('nbclient')
  pytest.importorskip('ipykernel')
  out = tmp_path / 'notebook.mp4'
  monkeypatch.setenv('G3FA_CHECKPOINT', str(checkpoints['g3fa']))
  monkeypatch.setenv('G3FA_SOURCE', str(media['source']))
  monkeypatch.setenv('G3FA_DRIVING', str(media['aac']))
  monkeypatch.setenv('G3FA_OUT', str(out))
  monkeypatch.setenv('G3FA_NO_CROP', '1')
  try:  # The notebook serves the web app too where Gradio is installed (the app extra).
    import gradio  # pylint: disable=g-import-not-at-top,unused-import
    open_app = True
  except ImportError:
    open_app = False
  monkeypatch.setenv('G3FA_OPEN_APP', '1' if open_app else '0')
  monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
      [str(NOTEBOOK.parents[1])] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(notebook, timeout=600, kernel_name='python3',
                          resources={'metadata': {'path': str(tmp_path)}}).execute()
  info = describe(out)
  assert info['frames'] == 12 and info['fps'] == 25 and info['audio'][0] == 'aac'
  outputs = json.dumps([cell.get('outputs', []) for cell in notebook.cells])
  assert '<video' in outputs
  if open_app:  # the page, inline, on a local port
    assert 'Running on local URL' in outputs and '<iframe' in outputs


def _argv(checkpoints, media, out, *extra: str) -> list[str]:
  return ['--checkpoint', str(checkpoints['g3fa']), '--source', str(media['source']),
          '--driving', str(media['aac']), '--out', str(out), '--quiet', *extra]


def test_out_naming_a_folder_or_under_a_file_is_refused_before_any_work(media, checkpoints,
                                                                        tmp_path, capsys):
  folder = tmp_path / 'results'
  folder.mkdir()
  # Checked first: the broken source is not even read.
  argv = _argv(checkpoints, media, folder, '--no-crop')
  argv[argv.index('--source') + 1] = str(media['broken_image'])
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith(f'error: --out {folder}: is a folder')
  assert list(folder.iterdir()) == []
  (tmp_path / 'notes.txt').write_text('keep')
  assert cli.main(_argv(checkpoints, media, tmp_path / 'notes.txt' / 'out.mp4', '--no-crop')) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and f'{tmp_path / "notes.txt"} is a file, not a folder' in err[0]
  assert (tmp_path / 'notes.txt').read_text() == 'keep'


def test_failed_run_leaves_no_folder_and_a_good_one_makes_it(media, checkpoints, tmp_path,
                                                            capsys):
  out = tmp_path / 'new' / 'deeper' / 'out.mp4'
  argv = _argv(checkpoints, media, out)  # crop on: the source has no face
  argv[argv.index('--source') + 1] = str(media['flat'])
  assert cli.main(argv) == 2
  assert 'no face found' in capsys.readouterr().err
  assert not (tmp_path / 'new').exists()
  assert cli.main(_argv(checkpoints, media, out, '--no-crop', '--max-frames', '2')) == 0
  assert describe(out)['frames'] == 2


def test_phone_driving_video_with_rotation_tag_is_read_upright(animator, checkpoints, media,
                                                               tmp_path):
  """A portrait driving clip stored sideways with a 90-degree display rotation: the driving
  panel of --side-by-side shows it upright."""
  upright = np.zeros((96, 64, 3), np.uint8)  # portrait; a different colour in every quadrant
  upright[:48, :32], upright[:48, 32:] = (230, 40, 40), (40, 230, 40)
  upright[48:, :32], upright[48:, 32:] = (40, 40, 230), (230, 230, 230)
  stored = np.ascontiguousarray(np.rot90(upright, k=-1))  # (64, 96): what the phone stores
  driving = tmp_path / 'phone.mp4'
  with av.open(str(driving), 'w') as container:
    stream = container.add_stream('libx264', rate=10)
    stream.width, stream.height, stream.pix_fmt = 96, 64, 'yuv420p'
    stream.set_display_rotation(90)  # shown turned a quarter counter-clockwise
    for _ in range(3):
      container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format='rgb24')))
    container.mux(stream.encode(None))
  out = tmp_path / 'panels.mp4'
  options = pipeline.AnimateOptions(
      checkpoint=str(checkpoints['g3fa']), source=str(media['source']), driving=str(driving),
      out=str(out), crop=False, side_by_side=True, batch_size=3, progress=False)
  assert pipeline.run(options, animator=animator, log=lambda _: None).num_frames == 3
  with av.open(str(out)) as container:
    frame = next(container.decode(video=0)).to_ndarray(format='rgb24').astype(np.float32)
  panel = frame[:, SIZE:2 * SIZE]  # source | driving | result
  expected = np.asarray(Image.fromarray(upright).resize((SIZE, SIZE)), np.float32)
  assert np.mean(np.abs(panel - expected)) < 12


def test_variable_frame_rate_clip_keeps_its_timing_and_sound(checkpoints, media, tmp_path):
  """Frames shown at irregular times (a phone's or a browser's recording): each output frame
  keeps its time, so the video lasts as long as the clip and its sound stays in sync."""
  slots = [0, 1, 2, 5, 6, 11]  # in periods of 1/25 s; the clip lasts 12 periods
  path = tmp_path / 'vfr.mp4'
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=25)
    stream.width = stream.height = SIZE
    stream.pix_fmt = 'yuv420p'
    audio = container.add_stream('aac', rate=16000)
    audio.layout = 'mono'
    for slot in slots:
      frame = av.VideoFrame.from_ndarray(np.full((SIZE, SIZE, 3), 20 * slot, np.uint8),
                                         format='rgb24')
      frame.pts, frame.time_base = slot, fractions.Fraction(1, 25)
      container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000 * 12 // 25) / 16000)).astype(np.float32)
    for start in range(0, len(tone), 1024):
      chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format='fltp',
                                         layout='mono')
      chunk.sample_rate, chunk.pts = 16000, start
      container.mux(audio.encode(chunk))
    container.mux(audio.encode(None))
  out = tmp_path / 'out.mp4'
  assert cli.main(['--checkpoint', str(checkpoints['g3fa']), '--source', str(media['source']),
                   '--driving', str(path), '--out', str(out), '--no-crop', '--quiet']) == 0
  with av.open(str(out)) as container:
    times = [float(f.time) for f in container.decode(video=0)]
  np.testing.assert_allclose(times, [s / 25 for s in slots], atol=1e-3)
  codec, seconds = describe(out)['audio']
  assert codec == 'aac' and abs(seconds - 12 / 25) < 0.07


def test_frame_slots():
  from g3fa_jax.animate import video  # pylint: disable=g-import-not-at-top
  assert video.frame_slots([0.0, 0.04, 0.08], 25) == [0, 1, 2]
  assert video.frame_slots([1.0, 1.04, 1.2, 1.21, None], 25) == [0, 1, 5, 6, 7]
  assert video.frame_slots([None, None], 25) == [0, 1]
  assert video.on_grid([0.0, 0.04, 0.2], 25) and not video.on_grid([0.0, 0.053], 25)
  info = video.MediaInfo('video', fractions.Fraction(75, 4), 6, False, fractions.Fraction(25))
  assert video.output_rate([0.0, 0.04, 0.08, 0.2], info) == 25  # the timestamps' rate
  assert video.output_rate([0.0, 0.0533, 0.1067], info) == fractions.Fraction(75, 4)
