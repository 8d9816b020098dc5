"""Finds the clips of a downloaded face-video dataset, with identity / video / clip names.

Layouts:
  voxceleb2  ROOT/id*/<video>/<clip>.mp4 (a `dev/` or `test/` level above the ids, e.g.
             `vox2/dev/mp4/id00012/...`, is accepted and gives the predefined split).
  flat       ROOT/**/*.mp4 (TalkingHead-1KH, CelebV-HQ, any folder of clips); the identity is
             the file name up to `identity_regex`'s first group (default: the name without a
             trailing `_<number>`, i.e. the YouTube id of `<ytid>_<n>.mp4`).
  frames     First Order Motion Model's format: ROOT/[train|test/]<video>/<frame>.png|jpg, one
             folder of frames per video; the identity is the folder name up to the first '#'
             (FOMM's `id10001#7w0IBEWc9Qw#000993#001143.mp4` naming).
  auto       voxceleb2 if an `id*/<video>/<clip>.mp4` tree is found, else frames if a folder
             holds images, else flat.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Iterator

import numpy as np

from g3fa_jax.media import video_io
from g3fa_jax.media.video_io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

LAYOUTS = ('auto', 'voxceleb2', 'flat', 'frames')
# What each layout looks for, for the message when it finds nothing.
LAYOUT_EXPECTS = {
    'voxceleb2': 'id*/<video>/<clip>.mp4 files (e.g. dev/mp4/id00012/abc/00001.mp4)',
    'flat': f'video files ({", ".join(VIDEO_EXTENSIONS)}) anywhere under it',
    'frames': f'folders of frame images ({", ".join(IMAGE_EXTENSIONS)}), one per video',
}
DEFAULT_IDENTITY_REGEX = r'^(.+?)(?:_\d+)?$'
_SPLIT_DIRS = {'train': 'train', 'dev': 'train', 'test': 'test'}


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """One clip to prepare.

  Attributes:
    key: unique clip key (relative path without extension, '/'-separated).
    identity: speaker identity (the train/test split is disjoint in it).
    video: source video name.
    clip: clip name.
    path: absolute path of the video file or frame folder.
    source: path relative to the input root.
    kind: 'video' or 'frames'.
    split: predefined split ('train' / 'test') or None.
  """
  key: str
  identity: str
  video: str
  clip: str
  path: str
  source: str
  kind: str
  split: str | None = None


def _is_video(p: pathlib.Path) -> bool:
  return p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS


def _is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS)


def _predefined_split(rel: pathlib.PurePath) -> str | None:
  for part in rel.parts[:-1]:
    if part.lower() in _SPLIT_DIRS:
      return _SPLIT_DIRS[part.lower()]
  return None


def _key(rel: pathlib.PurePath) -> str:
  return rel.with_suffix('').as_posix() if rel.suffix.lower() in VIDEO_EXTENSIONS else rel.as_posix()


def _walk_videos(root: pathlib.Path) -> Iterator[pathlib.Path]:
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(filenames):
      if name.lower().endswith(VIDEO_EXTENSIONS):
        yield pathlib.Path(dirpath) / name


def voxceleb2_clips(root: pathlib.Path) -> list[ClipSpec]:
  """`id*/<video>/<clip>.mp4` files anywhere under root."""
  clips = []
  for path in _walk_videos(root):
    rel = path.relative_to(root)
    if len(rel.parts) < 3 or not rel.parts[-3].startswith('id'):
      continue
    identity, video, clip = rel.parts[-3], rel.parts[-2], path.stem
    clips.append(ClipSpec(key=_key(rel), identity=identity, video=video, clip=clip,
                          path=str(path), source=rel.as_posix(), kind='video',
                          split=_predefined_split(rel)))
  return clips


def flat_clips(root: pathlib.Path, identity_regex: str = DEFAULT_IDENTITY_REGEX
               ) -> list[ClipSpec]:
  """Every video file under root; identity from the file name."""
  pattern = re.compile(identity_regex)
  clips = []
  for path in _walk_videos(root):
    rel = path.relative_to(root)
    match = pattern.match(path.stem)
    identity = match.group(1) if match and match.groups() else path.stem
    clips.append(ClipSpec(key=_key(rel), identity=identity, video=identity, clip=path.stem,
                          path=str(path), source=rel.as_posix(), kind='video',
                          split=_predefined_split(rel)))
  return clips


def frame_folder_clips(root: pathlib.Path) -> list[ClipSpec]:
  """Folders that directly hold image frames (FOMM's png format)."""
  clips = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    if not any(_is_image(f) for f in filenames):
      continue
    path = pathlib.Path(dirpath)
    rel = path.relative_to(root)
    name = path.name
    stem = name[:-len(path.suffix)] if path.suffix.lower() in VIDEO_EXTENSIONS else name
    parts = stem.split('#')
    identity = parts[0]
    video = parts[1] if len(parts) > 1 else stem
    clips.append(ClipSpec(key=rel.as_posix(), identity=identity, video=video, clip=stem,
                          path=str(path), source=rel.as_posix(), kind='frames',
                          split=_predefined_split(rel / 'x')))
  return clips


def detect_layout(root: pathlib.Path) -> str:
  for path in _walk_videos(root):
    rel = path.relative_to(root)
    if len(rel.parts) >= 3 and rel.parts[-3].startswith('id'):
      return 'voxceleb2'
    return 'flat'
  return 'frames'


def find_clips(root: str | os.PathLike, layout: str = 'auto',
               identity_regex: str = DEFAULT_IDENTITY_REGEX) -> tuple[str, list[ClipSpec]]:
  """(layout used, clips sorted by key) under root."""
  root = pathlib.Path(root).resolve()
  if root.exists() and not root.is_dir():
    raise FileNotFoundError(f'{root}: is a file; the input is the dataset folder')
  if not root.is_dir():
    raise FileNotFoundError(f'{root}: input folder does not exist')
  if layout not in LAYOUTS:
    raise ValueError(f'unknown layout {layout!r}; use one of {LAYOUTS}')
  if layout == 'auto':
    layout = detect_layout(root)
  if layout == 'voxceleb2':
    clips = voxceleb2_clips(root)
  elif layout == 'flat':
    clips = flat_clips(root, identity_regex)
  else:
    clips = frame_folder_clips(root)
  keys = [c.key for c in clips]
  if len(set(keys)) != len(keys):
    raise ValueError(f'{root}: two clips share a key (same path with different extensions?)')
  return layout, sorted(clips, key=lambda c: c.key)


def no_clips_message(root: str | os.PathLike, layout: str, asked: str = 'auto') -> str:
  """One line: nothing found under root for `layout` (what it expects, what else to try)."""
  how = 'detected' if asked == 'auto' else 'asked'
  if asked == 'auto':
    others = '; '.join(f'{name}: {LAYOUT_EXPECTS[name]}' for name in LAYOUT_EXPECTS)
    return (f'{root}: no clips found (no video file and no folder of frame images); the '
            f'layouts expect {others}')
  return (f'{root}: no clips found for layout {layout} ({how}), which expects '
          f'{LAYOUT_EXPECTS[layout]}; check --input, or choose another --layout')


def iter_frames(clip: ClipSpec) -> Iterator[np.ndarray]:
  """The (H, W, 3) uint8 RGB frames of a clip, whatever its kind (`video_io.UnreadableClip` if
  it cannot be decoded)."""
  if clip.kind == 'frames':
    return video_io.iter_folder_frames(clip.path)
  return video_io.iter_video_frames(clip.path)


def clip_fps(clip: ClipSpec) -> float:
  """The clip's frame rate (`video_io.DEFAULT_FPS` for frame folders)."""
  return video_io.DEFAULT_FPS if clip.kind == 'frames' else video_io.video_fps(clip.path)
