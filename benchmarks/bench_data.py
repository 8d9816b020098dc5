"""Input pipeline throughput: pairs/s of our grain pipeline vs the official loader's method.

  python benchmarks/bench_data.py                  # astronaut 256x256 clips of 150 frames
  python benchmarks/bench_data.py --clips DIR      # your own folder of mp4 clips (already cropped)

Both read the same clips. Ours: JPEG frames in ArrayRecord shards (prepared here with
`data_prep`, whole-frame crop), decoding only the two sampled frames. Official: the official
`FramesDataset.__getitem__` method, i.e. `imageio.mimread` of the whole mp4, `img_as_float32`,
then two random frames. Both run through the same grain machinery with 0, 1 and 2 worker
processes and batch into {'source', 'driving'} float32 arrays; `--jitter` adds the official colour
jitter to both (the official G3FA code has it switched off: its `transform` is None).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

import grain
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# pylint: disable=g-import-not-at-top,wrong-import-position
from data_prep import layouts
from data_prep import prepare
from data_prep import process_clip
from g3fa_jax.data import augment
from g3fa_jax.data import pairs
from g3fa_jax.data import pipeline
from g3fa_jax.data import source as source_lib
from g3fa_jax.media import video_io


def read_whole_video(path: str) -> np.ndarray:
  """The official read: every frame of the mp4, as float32 in [0, 1] (T, H, W, 3)."""
  try:
    import imageio  # pylint: disable=g-import-not-at-top
    video = np.array(imageio.mimread(path, memtest=False, format='mp4'))
  except ImportError:
    video = np.stack(list(video_io.iter_video_frames(path)))
  return video.astype(np.float32) / 255.0


class OfficialPair(grain.transforms.RandomMap):
  """Official method: decode the whole clip, then pick two sorted random frames."""

  def __init__(self, paths: list[str], jitter: bool):
    self.paths = paths
    self.jitter = jitter

  def random_map(self, element, rng):
    video = read_whole_video(self.paths[int(element)])
    idx = np.sort(rng.choice(len(video), size=2, replace=True))
    pair = [video[i] for i in idx]
    if self.jitter:  # official: float -> uint8 -> PIL ops -> float
      pair = augment.color_jitter([(f * 255).round().astype(np.uint8) for f in pair], rng)
      pair = [f.astype(np.float32) / 255.0 for f in pair]
    return {'source': pair[0], 'driving': pair[1]}


def official_dataset(paths: list[str], batch_size: int, seed: int, workers: int, jitter: bool):
  ds = grain.MapDataset.source(list(range(len(paths)))).shuffle(seed=seed).repeat()
  ds = ds.random_map(OfficialPair(paths, jitter), seed=seed).batch(batch_size, drop_remainder=True)
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=2))
  if workers:
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                     per_worker_buffer_size=2))
  return it


def pairs_per_second(ds, batch_size: int, batches: int, warmup: int = 2) -> float:
  it = iter(ds)
  for _ in range(warmup):
    next(it)
  start = time.perf_counter()
  for _ in range(batches):
    batch = next(it)
    assert batch['source'].dtype == np.float32
  rate = batches * batch_size / (time.perf_counter() - start)
  if hasattr(it, 'close'):
    it.close()
  return rate


def cpu_ms_per_call(fn, calls: int) -> float:
  fn(0)  # warm-up
  start = time.process_time()
  for i in range(calls):
    fn(i)
  return (time.process_time() - start) / calls * 1e3


def make_clips(folder: pathlib.Path, count: int, frames: int, size: int) -> None:
  from data_prep import astronaut_clips  # pylint: disable=g-import-not-at-top
  for i in range(count):
    video_io.write_video(folder / f'clip{i:03d}_0.mp4',
                         astronaut_clips.face_clip(frames, size, seed=i), crf=18)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--clips', default=None, help='folder of mp4 clips (default: astronaut clips)')
  p.add_argument('--num-clips', type=int, default=16)
  p.add_argument('--frames', type=int, default=150, help='frames per astronaut clip')
  p.add_argument('--size', type=int, default=256)
  p.add_argument('--batch-size', type=int, default=8)
  p.add_argument('--batches', type=int, default=20, help='timed batches (ours)')
  p.add_argument('--official-batches', type=int, default=4, help='timed batches (official)')
  p.add_argument('--workers', default='0,1,2')
  p.add_argument('--jitter', action='store_true', help='official colour jitter in both')
  p.add_argument('--quality', type=int, default=95)
  args = p.parse_args()
  workers = [int(w) for w in args.workers.split(',')]

  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    clips_dir = pathlib.Path(args.clips) if args.clips else tmp / 'clips'
    if not args.clips:
      clips_dir.mkdir()
      make_clips(clips_dir, args.num_clips, args.frames, args.size)
    settings = process_clip.ClipSettings(size=args.size, crop='full', face_check=False,
                                         quality=args.quality, min_frames=2)
    start = time.perf_counter()
    summary = prepare.run(str(clips_dir), str(tmp / 'shards'), layout='flat', settings=settings,
                          test_fraction=0, identity_regex=r'^(.+)$', progress=False)
    prep_s = time.perf_counter() - start
    _, clips = layouts.find_clips(clips_dir, 'flat')
    paths = [c.path for c in clips]
    frames = [len(list(video_io.iter_video_frames(pth))) for pth in paths[:1]]
    shard_mb = sum(f.stat().st_size for f in (tmp / 'shards').glob('*.array_record')) / 2**20
    video_mb = sum(os.path.getsize(pth) for pth in paths) / 2**20
    print(f'{len(paths)} clips of {frames[0]} frames at {args.size}x{args.size} '
          f'({video_mb:.1f} MiB mp4, {shard_mb:.1f} MiB shards JPEG q{args.quality}; '
          f'prepared in {prep_s:.1f} s), batch {args.batch_size}, '
          f'jitter {"on" if args.jitter else "off"}, {os.cpu_count()} CPUs')
    assert summary.written.get('train') == len(paths)

    augmentation = pairs.Augmentation() if args.jitter else pairs.Augmentation(0, 0, 0, 0)
    # CPU time per pair in this process: robust to other load on the machine.
    rng = np.random.default_rng(0)
    ours_pair = pairs.SamplePair(source_lib.ClipSource.from_dir(tmp / 'shards'), augmentation)
    official_pair = OfficialPair(paths, args.jitter)
    cpu_ours = cpu_ms_per_call(lambda i: ours_pair.random_map(np.array([i % len(paths)]), rng),
                               50)
    cpu_official = cpu_ms_per_call(lambda i: official_pair.random_map(i % len(paths), rng), 4)
    print(f'CPU per pair: ours {cpu_ours:.2f} ms, official method {cpu_official:.1f} ms '
          f'({cpu_official / cpu_ours:.0f}x)', flush=True)
    rows = []
    for w in workers:
      ours = pipeline.make_pair_dataset(
          tmp / 'shards', global_batch_size=args.batch_size, seed=0, worker_count=w,
          augmentation=augmentation, shard_options=grain.sharding.NoSharding())
      rate_ours = pairs_per_second(ours, args.batch_size, args.batches)
      official = official_dataset(paths, args.batch_size, 0, w, args.jitter)
      rate_official = pairs_per_second(official, args.batch_size, args.official_batches,
                                       warmup=1)
      rows.append((w, rate_ours, rate_official))
      print(f'workers {w}: ours {rate_ours:8.1f} pairs/s   official method '
            f'{rate_official:6.1f} pairs/s   speed-up {rate_ours / rate_official:5.1f}x',
            flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
