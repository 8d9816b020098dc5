"""A clip's frames with some of what changes between them held at one frame's values.

A synthetic frame is a pure function of its person and its per-frame state (`clips.Frames`), which
falls into independent factors: the head's pose, the mouth, the eyes and brows, the light, the
background. Rendering a driving frame with, say, the source frame's light gives the frame that an
animator perfect in everything but the light would produce, so its error against the real
driving frame is what the light's drift alone costs (`benchmarks/diagnose_motion.py
--check=factors`): no motion transfer can remove it, since nothing of the driving frame's light
passes through the keypoints.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from g3fa_jax.synthetic import clips as clips_lib
from g3fa_jax.synthetic import render

# Every field of `clips.Frames`, in exactly one factor.
FACTORS: dict[str, tuple[str, ...]] = {
    'pose': ('rotation', 'translation'),
    'mouth': ('mouth',),
    'eyes': ('blink', 'gaze', 'brow'),
    'light': ('light_dir', 'light_colour', 'ambient'),
    'background': ('bg_top', 'bg_bottom', 'bg_seed'),
}


def frames_with(frames: clips_lib.Frames, indices: Sequence[int], held: Sequence[str],
                at: int = 0) -> clips_lib.Frames:
  """The frames `indices` of `frames` (a (T, ...) clip state) with the factors named in `held`
  (keys of FACTORS) set to frame `at`'s values; the other factors are the frames' own."""
  unknown = sorted(set(held) - set(FACTORS))
  if unknown:
    raise ValueError(f'frames_with: unknown factors {unknown}; choose from {sorted(FACTORS)}')
  picked = {f.name: np.asarray(getattr(frames, f.name))[np.asarray(indices, int)]
            for f in dataclasses.fields(frames)}
  for name in held:
    for field in FACTORS[name]:
      value = np.asarray(getattr(frames, field))[at]
      picked[field] = np.repeat(value[None], len(indices), axis=0)
  return clips_lib.Frames(**picked)


def rerender(record: dict[str, Any], indices: Sequence[int], held: Sequence[str], at: int = 0,
             steps: int = render.MARCH_STEPS, shadow_steps: int = render.SHADOW_STEPS
             ) -> np.ndarray:
  """The frames `indices` of a synthetic clip's record, rendered again with the factors `held` at
  frame `at`'s values: (k, S, S, 3) float32 in [0, 1], rounded to 8 bits as the stored frames are
  (with nothing held they are the stored frames, PNG-encoded clips exactly). Needs the record's
  `synthetic` field (clips written by `g3fa_jax.synthetic.writer`) and the steps it was rendered
  with (the defaults are the writer's)."""
  clip = clips_lib.clip_of_record(record, 'rerendering it')
  out = render.render_frames(clip.identity, frames_with(clip.frames, indices, held, at),
                             size=int(record['frame_size'][0]), steps=steps,
                             shadow_steps=shadow_steps)
  return render.as_stored(out['image'])
