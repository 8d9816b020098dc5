"""`evaluate()`: a checkpoint on a prepared test split, both protocols, tables, logs and samples."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
from typing import Any

import ml_collections
from absl import logging

from g3fa_jax import checkpoint as ckpt
from g3fa_jax.evaluation import config as config_lib
from g3fa_jax.evaluation import pairs as pairs_lib
from g3fa_jax.evaluation import protocols
from g3fa_jax.evaluation import samples as samples_lib
from g3fa_jax.evaluation import table
from g3fa_jax.evaluation.suite import MetricSuite
from g3fa_jax.evaluation.videos import VideoSet
from g3fa_jax.inference.animator import Animator
from g3fa_jax.train import writers

PROTOCOLS = ('same', 'cross')


def resolve_eval_config(config: ml_collections.ConfigDict | None) -> ml_collections.ConfigDict:
  """The defaults of `eval_config()` updated with the run config's `eval` section, if any."""
  cfg = config_lib.eval_config()
  given = config.get('eval') if config is not None else None
  if given is not None:
    for key, value in given.items():
      if key not in cfg:
        raise ValueError(f'config.eval.{key}: unknown field (known: {", ".join(sorted(cfg))})')
      cfg[key] = value
  return cfg


def _protocols(cfg: ml_collections.ConfigDict) -> list[str]:
  names = [p.strip() for p in str(cfg.protocols).split(',') if p.strip()]
  unknown = [p for p in names if p not in PROTOCOLS]
  if unknown or not names:
    raise ValueError(f'eval.protocols: {cfg.protocols!r}; use a comma-separated subset of '
                     f'{",".join(PROTOCOLS)}')
  return names


def cross_identity_pairs(videos: VideoSet, cfg: ml_collections.ConfigDict,
                         workdir: pathlib.Path) -> list[tuple[int, int]]:
  """Pairs from `cfg.pairs_file`, or drawn from `cfg.seed`; written to `workdir/pairs.csv`."""
  if cfg.pairs_file:
    keyed = pairs_lib.read_pairs(cfg.pairs_file)
    pairs = [(videos.index_of_key(s), videos.index_of_key(d)) for s, d in keyed]
    same = [f'{s},{d}' for (s, d), (i, j) in zip(keyed, pairs)
            if videos.videos[i].identity == videos.videos[j].identity]
    if same:
      logging.warning('%d pairs of %s share an identity (e.g. %s)', len(same), cfg.pairs_file,
                      same[0])
  else:
    pairs = pairs_lib.draw_pairs([v.identity for v in videos.videos], cfg.num_pairs, cfg.seed)
  keys = videos.keys
  pairs_lib.write_pairs(workdir / 'pairs.csv', [(keys[s], keys[d]) for s, d in pairs])
  return pairs


def _progress_bar(total: int, enabled: bool, desc: str):
  if not enabled:
    return contextlib.nullcontext(None)
  try:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  except ImportError:
    return contextlib.nullcontext(None)
  return tqdm(total=total, unit='frame', desc=desc, dynamic_ncols=True, file=sys.stderr)


def _write_tensorboard(workdir: pathlib.Path, step: int,
                       results: dict[str, protocols.ProtocolResult]) -> None:
  writer = writers.create_writer(str(workdir / 'tensorboard'), asynchronous=False)
  for name, result in results.items():
    scalars = {f'eval/{name}/{k}': v.value for k, v in {**result.metrics, **result.extras}.items()
               if v.status == 'ok' and v.value is not None}
    scalars[f'eval/{name}/frames_per_second'] = result.frames_per_second
    writer.write_scalars(step, scalars)
    if result.samples:
      writer.write_images(step, {f'eval/{name}/samples_{i}': grid[None]
                                 for i, grid in enumerate(result.samples)})
  writer.flush()
  writer.close()


def evaluate(checkpoint: str | os.PathLike, workdir: str | os.PathLike, *,
             data_dir: str | os.PathLike, cfg: ml_collections.ConfigDict,
             progress: bool = True) -> dict[str, Any]:
  """Evaluates the checkpoint's kp_detector + generator on a prepared dataset's split.

  Args:
    checkpoint: orbax checkpoint folder (root or step) with `kp_detector` and `generator`.
    workdir: output folder: results.json, results.md, pairs.csv, samples/*.png, tensorboard/.
    data_dir: prepared dataset folder (index.json and shards).
    cfg: eval config (`resolve_eval_config`).
    progress: show a progress bar with frames/s.

  Returns:
    The JSON results (as written to results.json).
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  names = _protocols(cfg)
  meta_info, step = ckpt.read_config(checkpoint)
  animator = Animator.from_checkpoint(checkpoint)
  image_size = int(animator.config.get('image_size', 256))
  videos = VideoSet(data_dir, cfg.split, image_size)
  suite = MetricSuite.load(cfg)
  results: dict[str, protocols.ProtocolResult] = {}
  if 'same' in names:
    chosen = videos.videos if cfg.max_videos <= 0 else videos.videos[:cfg.max_videos]
    total = sum(v.num_frames if cfg.max_frames <= 0 else min(v.num_frames, cfg.max_frames)
                for v in chosen)
    with _progress_bar(total, progress, 'same identity') as bar:
      results['same_identity'] = protocols.same_identity(animator, videos, suite, cfg, bar)
  if 'cross' in names:
    pairs = cross_identity_pairs(videos, cfg, workdir)
    total = sum(videos.videos[d].num_frames if cfg.max_frames <= 0
                else min(videos.videos[d].num_frames, cfg.max_frames) for _, d in pairs)
    with _progress_bar(total, progress, 'cross identity') as bar:
      results['cross_identity'] = protocols.cross_identity(animator, videos, suite, cfg, pairs,
                                                           bar)
  meta = {'checkpoint': str(pathlib.Path(checkpoint).absolute()), 'step': step,
          'source': meta_info.get('source', ''), 'data_dir': str(pathlib.Path(data_dir).absolute()),
          'split': cfg.split, 'image_size': image_size, 'eval_config': cfg.to_dict()}
  json_path, md_path = table.write(workdir, results, meta)
  for name, result in results.items():
    for i, grid in enumerate(result.samples):
      samples_lib.save_png(workdir / 'samples' / f'{name}_{i}.png', grid)
  _write_tensorboard(workdir, step, results)
  print(table.to_text(results))
  print(f'wrote {json_path} and {md_path}')
  return table.to_json(results, meta)
