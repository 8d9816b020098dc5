"""Tiny synthetic face videos for tests, demos and benchmarks (no download needed).

Each clip pastes the face of scikit-image's `astronaut()` photograph onto a textured background,
moving and slightly changing in size and brightness over the frames, so the face detector finds
it. Identities differ by the background and colour tint.

  python -m data_prep.astronaut_clips --output /tmp/synth --layout voxceleb2 --identities 4
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import sys

import numpy as np
from PIL import Image

from g3fa_jax.media import video_io

LAYOUTS = ('voxceleb2', 'flat', 'frames')


@functools.lru_cache(maxsize=1)
def face_patch() -> np.ndarray:
  """(176, 136, 3) uint8 head-and-shoulders crop around the astronaut's face."""
  try:
    from skimage import data  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('synthetic face clips need scikit-image (pip install scikit-image)') from e
  return np.ascontiguousarray(data.astronaut()[20:196, 156:292])


def face_clip(num_frames: int = 12, size: int = 96, seed: int = 0, face: bool = True
              ) -> np.ndarray:
  """(T, size, size, 3) uint8 frames; the face (about half the frame tall) drifts a little."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size] / size
  base = rng.uniform(40, 200, 3)
  background = (base + 30 * np.sin(2 * np.pi * (xx[..., None] * rng.uniform(1, 3, 3)
                                                + yy[..., None] * rng.uniform(1, 3, 3))))
  tint = rng.uniform(0.85, 1.15, 3)
  patch = face_patch()
  start, end = rng.uniform(0.38, 0.45, 2), rng.uniform(0.55, 0.62, 2)
  frames = []
  for t in range(num_frames):
    frame = background.copy()
    if face:
      a = t / max(1, num_frames - 1)
      height = int(size * (0.5 + 0.03 * np.sin(2 * np.pi * a)))
      width = int(height * patch.shape[1] / patch.shape[0])
      resized = np.asarray(Image.fromarray(patch).resize((width, height), Image.BILINEAR))
      cx, cy = (1 - a) * start + a * end
      x0 = int(np.clip(cx * size - width / 2, 0, size - width))
      y0 = int(np.clip(cy * size - height / 2, 0, size - height))
      frame[y0:y0 + height, x0:x0 + width] = resized * tint
    frames.append(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
  return np.stack(frames)


def write_clip(path: pathlib.Path, frames: np.ndarray, layout: str) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  if layout == 'frames':
    path.mkdir(exist_ok=True)
    for i, frame in enumerate(frames):
      Image.fromarray(frame).save(path / f'{i:07d}.png')
  else:
    video_io.write_video(path, frames)


def clip_path(root: pathlib.Path, layout: str, identity: str, video: str, clip: int
              ) -> pathlib.Path:
  if layout == 'voxceleb2':
    return root / identity / video / f'{clip:05d}.mp4'
  if layout == 'flat':
    return root / f'{identity}{video}_{clip}.mp4'
  return root / f'{identity}#{video}#{clip:06d}#{clip + 1:06d}.mp4'


def make_dataset(root: str | os.PathLike, layout: str = 'voxceleb2', identities: int = 3,
                 videos: int = 1, clips: int = 2, num_frames: int = 12, size: int = 96,
                 seed: int = 0) -> list[pathlib.Path]:
  """Writes a synthetic dataset in the given layout; returns the clip paths."""
  if layout not in LAYOUTS:
    raise ValueError(f'layout must be one of {LAYOUTS}')
  root = pathlib.Path(root)
  paths = []
  for i in range(identities):
    for v in range(videos):
      for c in range(clips):
        path = clip_path(root, layout, f'id{i:05d}', f'vid{v:02d}', c + 1)
        frames = face_clip(num_frames, size, seed=seed * 100003 + i * 1009 + v * 101 + c)
        write_clip(path, frames, layout)
        paths.append(path)
  return paths


def write_truncated_copy(source: pathlib.Path, dest: pathlib.Path, fraction: float = 0.5
                         ) -> None:
  """A corrupt clip: the first `fraction` of a video file's bytes."""
  dest.parent.mkdir(parents=True, exist_ok=True)
  data = source.read_bytes()
  dest.write_bytes(data[:int(len(data) * fraction)])


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog='python -m data_prep.astronaut_clips', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--output', required=True)
  p.add_argument('--layout', default='voxceleb2', choices=LAYOUTS)
  p.add_argument('--identities', type=int, default=3)
  p.add_argument('--videos', type=int, default=1)
  p.add_argument('--clips', type=int, default=2)
  p.add_argument('--frames', type=int, default=12)
  p.add_argument('--size', type=int, default=96)
  p.add_argument('--seed', type=int, default=0)
  args = p.parse_args(argv)
  paths = make_dataset(args.output, args.layout, args.identities, args.videos, args.clips,
                       args.frames, args.size, args.seed)
  print(f'wrote {len(paths)} synthetic clips under {args.output}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
