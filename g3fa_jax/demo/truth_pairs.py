"""Training pairs of the synthetic heads with their true motion, for the motion warm-up's
true-motion terms (`motion_warmup.MotionTrainer`: truth_motion, truth_keypoints, mask_teacher).
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np

from g3fa_jax.synthetic import dataset
from g3fa_jax.synthetic import flow
from g3fa_jax.synthetic import landmarks as landmarks_lib


class TruthPairs:
  """Random (source, driving) pairs of the training clips with their true motion
  (`g3fa_jax.synthetic.flow.backward_grid` at the dense motion's resolution `motion_size`) and
  landmarks; the clips are decoded into memory once (the job's 108 clips of 32 64x64 frames:
  ~50 MB). `with_mouth`: the true motion includes the mouth's opening (`flow.jaw_drop`), not
  only the head's rigid motion."""

  def __init__(self, config: ml_collections.ConfigDict, motion_size: int, seed: int = 0,
               with_mouth: bool = False):
    from g3fa_jax.demo import job  # pylint: disable=g-import-not-at-top  (job imports this module)
    clips = job._split_source(config, 'train')  # pylint: disable=protected-access
    records = [clips[i] for i in range(len(clips))]
    if records and 'synthetic' not in records[0]:
      raise ValueError(f'{config.data.data_dir}: the true motion needs the synthetic clips '
                       '(python -m data_prep.synthetic); these have no ground truth')
    self._frames = [job._decode_frames(r, range(r['num_frames'])) for r in records]  # pylint: disable=protected-access
    self._depth = [dataset.read_geometry(r)[0][..., 0] for r in records]
    self._poses = [flow.clip_poses(r) for r in records]
    self._landmarks = [landmarks_lib.record_landmarks(r) for r in records]
    self._motion_size = int(motion_size)
    self._with_mouth = bool(with_mouth)
    self._rng = np.random.default_rng(seed)

  def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                             tuple[np.ndarray, np.ndarray]]:
    """(source, driving) (B, S, S, 3) in [0, 1], the true sampling grid (B, g, g, 2) in [-1, 1]
    and the two frames' landmarks ((B, L, 2) each, `g3fa_jax.synthetic.landmarks`)."""
    sources, drivings, truths, marks = [], [], [], []
    for _ in range(batch_size):
      c = self._rng.integers(len(self._frames))
      i, j = self._rng.integers(len(self._frames[c]), size=2)
      sources.append(self._frames[c][i])
      drivings.append(self._frames[c][j])
      truths.append(flow.backward_grid(self._depth[c][j], self._poses[c], j, i,
                                       self._motion_size, with_mouth=self._with_mouth)[0])
      marks.append(self._landmarks[c][[i, j]])
    marks = np.stack(marks)
    return np.stack(sources), np.stack(drivings), np.stack(truths), (marks[:, 0], marks[:, 1])


def sampler(config: ml_collections.ConfigDict, motion_size: int) -> Any:
  """A `next_batch()` for `job.train_motion`: batches of `config.batch_size` TruthPairs, with the
  mouth's motion in the truth if `config.demo.truth_motion_mouth`."""
  pairs = TruthPairs(config, motion_size, seed=int(config.seed),
                     with_mouth=bool(config.demo.get('truth_motion_mouth', False)))
  return lambda: pairs.sample(int(config.batch_size))
