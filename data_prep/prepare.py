"""Face videos -> cropped frames -> ArrayRecord shards + index (resumable, parallel).

  python -m data_prep.prepare --input VOX2/dev/mp4 --output data/vox2 --layout voxceleb2
  python -m data_prep.prepare --input CLIPS/ --output data/clips --layout flat --workers 8

Every clip becomes one record (its frames cropped to a stable square face box, resized to
--size, encoded as JPEG or PNG, plus metadata). Clips are split train/test by identity (a stable
share of the identities as close to --test-fraction as their count allows, chosen by a stable
hash; or the dataset's own train/test folders; or --test-identities). Unreadable, too short and
faceless clips are skipped, counted and listed.
A rerun skips clips already in a finished shard (or already skipped), so it adds only what is
new; an interrupted run leaves only `.tmp` files, removed on the next run.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import multiprocessing
import pathlib
import sys
import math
import time
import zlib
from typing import Any, Iterable, Mapping, Sequence

from data_prep import boxes as boxes_lib
from data_prep import layouts
from data_prep import process_clip
from g3fa_jax.animate import cli_flags
from g3fa_jax.data import index as index_lib
from g3fa_jax.data import records
from g3fa_jax.data import shards
from g3fa_jax.media import paths


@dataclasses.dataclass
class Summary:
  """What a run did."""
  layout: str = ''
  found: int = 0
  already_done: int = 0
  processed: int = 0
  written: dict[str, int] = dataclasses.field(default_factory=dict)
  shards_written: list[str] = dataclasses.field(default_factory=list)
  skipped: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  removed_unfinished: list[str] = dataclasses.field(default_factory=list)
  boxes_given: int = 0
  boxes_matched: int = 0
  seconds: float = 0.0
  index: dict[str, Any] = dataclasses.field(default_factory=dict)

  def skipped_by_reason(self) -> dict[str, int]:
    return dict(collections.Counter(s['reason'] for s in self.skipped))

  def text(self, out_dir: pathlib.Path, max_listed: int = 20) -> str:
    lines = [f'{self.found} clips found (layout {self.layout}), {self.already_done} already done, '
             f'{self.processed} processed in {self.seconds:.1f} s']
    written = ', '.join(f'{k} {v}' for k, v in sorted(self.written.items())) or 'nothing'
    lines.append(f'  written: {written} records in {len(self.shards_written)} new shards')
    if self.boxes_given:
      lines.append(f'  boxes: {self.boxes_matched} of {self.boxes_given} given boxes match a clip')
    reasons = ', '.join(f'{k} {v}' for k, v in sorted(self.skipped_by_reason().items()))
    lines.append(f'  skipped: {len(self.skipped)}' + (f' ({reasons})' if reasons else ''))
    for s in self.skipped[:max_listed]:
      lines.append(f'    {s["reason"]:<11} {s["detail"] or s["source"]}')
    if len(self.skipped) > max_listed:
      lines.append(f'    ... {len(self.skipped) - max_listed} more in {out_dir}/skipped-*.json')
    for name, s in sorted(self.index.get('splits', {}).items()):
      lines.append(f'  {name}: {s["num_records"]} clips, {len(s["identities"])} identities, '
                   f'{len(s["shards"])} shards')
    lines.append(f'  index: {out_dir / index_lib.INDEX_NAME}')
    return '\n'.join(lines)


def test_count(num_identities: int, fraction: float) -> int:
  """How many of `num_identities` the test split gets: the count nearest to `fraction` of them
  (halves round up: 1 of 5 at 0.1, 3 of 5 at 0.5; none of 4 at 0.1)."""
  return min(num_identities, max(0, math.floor(fraction * num_identities + 0.5)))


def _rank(identity: str) -> tuple[int, str]:
  """A stable pseudo-random order of identities (the same on every machine and run)."""
  return zlib.crc32(identity.encode()), identity


def identity_splits(clips: Iterable[layouts.ClipSpec], test_fraction: float,
                    test_identities: Iterable[str] = (), use_predefined: bool = True,
                    written: Mapping[str, str] | None = None) -> dict[str, str]:
  """identity -> 'train' or 'test' for every identity of `clips` and `written`.

  Identities already in shards (`written`: identity -> split), named in `test_identities`, or
  with a predefined split (the dataset's train/test folders) keep theirs; the others fill the
  test split, in a stable hash order, until it holds `test_count(all identities,
  test_fraction)` identities. So a first run hits the fraction as closely as the identity count
  allows, and a rerun with more identities never moves one already written.
  """
  clips = list(clips)
  written = dict(written or {})
  names = set(test_identities)
  identities = {c.identity for c in clips} | set(written)
  fixed = dict(written)
  if use_predefined:
    for clip in clips:
      if clip.split is not None:
        fixed.setdefault(clip.identity, clip.split)
  fixed.update({i: 'test' for i in names & identities})
  free = sorted(identities - set(fixed), key=_rank)
  wanted = test_count(len(identities), test_fraction)
  num_test = max(0, min(len(free), wanted - sum(s == 'test' for s in fixed.values())))
  plan = {i: 'test' if n < num_test else 'train' for n, i in enumerate(free)}
  plan.update(fixed)
  return plan


def assign_split(clip: layouts.ClipSpec, plan: Mapping[str, str],
                 test_identities: Iterable[str] = (), use_predefined: bool = True) -> str:
  """'test' or 'train' of one clip: named test identities, then the clip's predefined split,
  then its identity's split in `plan` (`identity_splits`)."""
  if clip.identity in set(test_identities):
    return 'test'
  if use_predefined and clip.split is not None:
    return clip.split
  return plan[clip.identity]


# Worker side: settings are sent once per worker process by the pool initializer.
_WORKER: dict[str, Any] = {}


def _init_worker(settings: process_clip.ClipSettings, given: dict[str, list[float]],
                 normalized: bool, compile_cache: str | None = None) -> None:
  if compile_cache:
    from g3fa_jax.face import mtcnn  # pylint: disable=g-import-not-at-top
    mtcnn.use_compilation_cache(compile_cache)
  _WORKER.update(settings=settings, given=given, normalized=normalized)


def _work(clip: layouts.ClipSpec) -> tuple[str, layouts.ClipSpec, Any]:
  given = _WORKER['given']
  box = given.get(clip.key, given.get(clip.source))
  try:
    record = process_clip.prepare_clip(clip, _WORKER['settings'], box, _WORKER['normalized'])
  except process_clip.SkipClip as e:
    return 'skip', clip, (e.reason, e.detail)
  except Exception as e:  # pylint: disable=broad-except
    # One bad clip must not stop a day-long run: report it like the expected failures.
    return 'skip', clip, ('error', f'{clip.source}: {type(e).__name__}: {e}')
  return 'ok', clip, (records.serialize(record), records.metadata(record))


def _progress(total: int, enabled: bool):
  if not enabled:
    return None
  try:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return tqdm(total=total, unit='clip', dynamic_ncols=True, file=sys.stderr)


def run(input_dir: str, output_dir: str, *, layout: str = 'auto',
        settings: process_clip.ClipSettings = process_clip.ClipSettings(),
        workers: int = 0, records_per_shard: int = 200, test_fraction: float = 0.1,
        test_identities: Sequence[str] = (), use_predefined_split: bool = True,
        identity_regex: str = layouts.DEFAULT_IDENTITY_REGEX, boxes_file: str | None = None,
        boxes_normalized: bool = False, retry_skipped: bool = False, limit: int = 0,
        progress: bool = True, compile_cache: str | None = None) -> Summary:
  """Prepares (or resumes preparing) a dataset; returns what was done.

  `compile_cache`: a folder for JAX's persistent compilation cache
  (`mtcnn.use_compilation_cache`), set in this process and in every worker; None leaves JAX's
  configuration as it is.
  """
  start = time.time()
  settings.validate()
  # Every check before the output folder is made: a run refused here creates nothing.
  out_dir = paths.check_output_dir(output_dir, '--output')
  summary = Summary()
  summary.layout, clips = layouts.find_clips(input_dir, layout, identity_regex)
  if not clips:
    raise ValueError(layouts.no_clips_message(input_dir, summary.layout, layout))
  if limit:
    clips = clips[:limit]
  summary.found = len(clips)
  given = boxes_lib.load_boxes(boxes_file) if boxes_file else {}
  summary.boxes_given = len(given)
  summary.boxes_matched = sum(c.key in given or c.source in given for c in clips)
  if given and not summary.boxes_matched:
    raise ValueError(f'{boxes_file}: none of its {len(given)} boxes names a clip key or path '
                     f'(e.g. {clips[0].key!r} or {clips[0].source!r})')
  created = paths.make_dirs(out_dir)
  try:
    done, summary.removed_unfinished = shards.resume(out_dir, {
        'settings': settings.fingerprint(), 'layout': summary.layout,
        'test_fraction': test_fraction, 'test_identities': sorted(test_identities),
        'use_predefined_split': use_predefined_split, 'identity_regex': identity_regex},
        'use the same settings to resume, or a new --output folder')
  except BaseException:
    paths.remove_empty_dirs(created)
    raise
  written = {r['identity']: m['split'] for m in shards.read_manifests(out_dir)
             for r in m['records']}
  plan = identity_splits(clips, test_fraction, test_identities, use_predefined_split, written)
  if not retry_skipped:
    done |= {s['key'] for s in shards.read_skipped(out_dir)}
  todo = [c for c in clips if c.key not in done]
  summary.already_done = len(clips) - len(todo)

  run_id = time.strftime('%Y%m%d-%H%M%S')
  skipped_path = out_dir / f'skipped-{run_id}.json'
  bar = _progress(len(todo), progress)

  def write_skipped() -> None:
    if summary.skipped:
      shards.write_json_atomic(skipped_path, summary.skipped)

  writer = shards.SplitWriter(out_dir, records_per_shard, on_close=lambda _: write_skipped())
  summary.written, summary.shards_written = writer.written, writer.shards_written

  if workers > 0:
    pool = multiprocessing.get_context('spawn').Pool(
        workers, initializer=_init_worker,
        initargs=(settings, given, boxes_normalized, compile_cache))
    results = pool.imap(_work, todo, chunksize=1)
  else:
    pool = None
    _init_worker(settings, given, boxes_normalized, compile_cache)
    results = map(_work, todo)
  try:
    for status, clip, payload in results:
      summary.processed += 1
      if status == 'skip':
        reason, detail = payload
        summary.skipped.append({'key': clip.key, 'source': clip.source, 'reason': reason,
                                'detail': detail})
      else:
        data, meta = payload
        writer.add(assign_split(clip, plan, test_identities, use_predefined_split), data, meta)
      if bar is not None:
        bar.update(1)
        bar.set_postfix(written=sum(summary.written.values()), skipped=len(summary.skipped))
    writer.close()
    write_skipped()
  finally:
    if bar is not None:
      bar.close()
    if pool is not None:
      pool.terminate()
      pool.join()
  summary.index = shards.build_index(out_dir, (settings.size, settings.size), settings.encoding)
  summary.seconds = time.time() - start
  return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  d = process_clip.ClipSettings()
  p = argparse.ArgumentParser(prog='python -m data_prep.prepare', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--input', required=True, help='dataset root folder')
  p.add_argument('--output', required=True, help='output folder for shards and index.json')
  p.add_argument('--layout', default='auto', choices=layouts.LAYOUTS)
  p.add_argument('--workers', type=int, default=0, help='worker processes (0: in-process)')
  p.add_argument('--records-per-shard', type=int, default=200)
  p.add_argument('--size', type=int, default=d.size, help='stored frame side (pixels)')
  p.add_argument('--encoding', default=d.encoding, choices=records.ENCODINGS)
  p.add_argument('--quality', type=int, default=d.quality, help='JPEG quality')
  p.add_argument('--crop', default=d.crop, choices=('detect', 'full'),
                 help="'detect': stable face crop; 'full': whole frame (centre square)")
  p.add_argument('--increase', type=float, default=d.increase,
                 help='crop margin around the face box, fraction of its size per side')
  p.add_argument('--detect-every', type=int, default=d.detect_every)
  p.add_argument('--max-detections', type=int, default=d.max_detections)
  p.add_argument('--detect-max-side', type=int, default=d.detect_max_side)
  p.add_argument('--min-face-size', type=int, default=d.min_face_size)
  p.add_argument('--face-prob', type=float, default=d.face_prob)
  p.add_argument('--min-face-fraction', type=float, default=d.min_face_fraction)
  p.add_argument('--no-face-check', action='store_true',
                 help="with --crop full or --boxes, do not require a detected face")
  p.add_argument('--min-frames', type=int, default=d.min_frames)
  p.add_argument('--max-frames', type=int, default=d.max_frames, help='0: keep all frames')
  p.add_argument('--test-fraction', type=float, default=0.1,
                 help='share of identities in the test split: the nearest count (chosen by a '
                 'stable hash; identities already written keep their split)')
  p.add_argument('--test-identities', default='', help='comma-separated identities for test')
  p.add_argument('--ignore-predefined-split', action='store_true',
                 help='split by hash even when the input has train/test (or dev/test) folders')
  p.add_argument('--identity-regex', default=layouts.DEFAULT_IDENTITY_REGEX,
                 help='flat layout: the identity is the first group of this regex on the file '
                 'name')
  p.add_argument('--boxes', default=None,
                 help='JSON/CSV of face boxes per clip from the dataset metadata')
  p.add_argument('--boxes-normalized', action='store_true',
                 help='--boxes coordinates are fractions of the frame size')
  p.add_argument('--retry-skipped', action='store_true', help='retry clips skipped before')
  p.add_argument('--limit', type=int, default=0, help='only the first N clips (by key)')
  p.add_argument('--no-progress', action='store_true')
  cli_flags.add_compile_cache_flags(p, what='the compiled face detector (also in each worker)')
  return p.parse_args(argv)


def _compile_cache(args: argparse.Namespace) -> str | None:
  """The persistent compilation cache folder of the CLI (None: none, or nothing to detect)."""
  if args.crop == 'full' and args.no_face_check:
    return None
  return cli_flags.compile_cache_dir(args.compile_cache, args.no_compile_cache)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(argv)
  settings = process_clip.ClipSettings(
      size=args.size, encoding=args.encoding, quality=args.quality, crop=args.crop,
      increase=args.increase, detect_every=args.detect_every,
      max_detections=args.max_detections, detect_max_side=args.detect_max_side,
      min_face_size=args.min_face_size, face_prob=args.face_prob,
      min_face_fraction=args.min_face_fraction, face_check=not args.no_face_check,
      min_frames=args.min_frames, max_frames=args.max_frames)
  try:
    summary = run(args.input, args.output, layout=args.layout, settings=settings,
                  workers=args.workers, records_per_shard=args.records_per_shard,
                  test_fraction=args.test_fraction,
                  test_identities=[s for s in args.test_identities.split(',') if s],
                  use_predefined_split=not args.ignore_predefined_split,
                  identity_regex=args.identity_regex, boxes_file=args.boxes,
                  boxes_normalized=args.boxes_normalized, retry_skipped=args.retry_skipped,
                  limit=args.limit, progress=not args.no_progress,
                  compile_cache=_compile_cache(args))
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(summary.text(pathlib.Path(args.output)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
