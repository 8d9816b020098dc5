"""Live mode speed: `python -m g3fa_jax.live` on a video played as if live, headless.

  python benchmarks/bench_live.py                          # vox-256, random weights, 256x256
  python benchmarks/bench_live.py --config configs/tiny.py # the tiny model (64x64)
  python benchmarks/bench_live.py --checkpoint DIR         # a converted or trained checkpoint

Without --checkpoint the model of --config is saved with random weights (they time exactly like
trained ones) to a temporary checkpoint. The driving video is a face moving over a 640x480 frame
at 25 fps (the astronaut of scikit-image), cropped on the smoothed face box as from a webcam.
Prints the time from the command's start to its first live frame (`--cold`: with an empty
compilation cache, i.e. compiling everything; else reusing what earlier runs compiled), and the
command's own summary:
frames shown per second, the latency from a frame's arrival to its result, frames dropped.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import av
import jax
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# pylint: disable=g-import-not-at-top,wrong-import-position
from g3fa_jax import checkpoint
from g3fa_jax import model_config
from g3fa_jax.models import networks


def random_checkpoint(config_path: str, directory: pathlib.Path) -> pathlib.Path:
  """The model of a run config with random weights, saved as an orbax checkpoint."""
  config = model_config.load_config(config_path)
  rng_kp, rng_gen = jax.random.split(jax.random.PRNGKey(0))
  init = lambda name, rng: jax.jit(lambda r: networks.init_variables(name, config, r))(rng)
  variables = {'kp_detector': init('kp_detector', rng_kp), 'generator': init('generator', rng_gen)}
  checkpoint.save_checkpoint(directory, 0, variables, config.to_dict(), source='random weights')
  return directory


def face_clip(path: pathlib.Path, seconds: float, fps: int = 25) -> tuple[pathlib.Path, pathlib.Path]:
  """(portrait.png, a 640x480 clip of that face drifting and nodding)."""
  from skimage import data  # dev extra
  face = Image.fromarray(data.astronaut()).resize((300, 300))
  portrait = path.with_name('portrait.png')
  face.save(portrait)
  with av.open(str(path), 'w') as container:
    stream = container.add_stream('libx264', rate=fps)
    stream.width, stream.height, stream.pix_fmt = 640, 480, 'yuv420p'
    for i in range(int(seconds * fps)):
      t = i / fps
      frame = Image.new('RGB', (640, 480), (70, 80, 90))
      turned = face.rotate(8 * np.sin(2 * np.pi * t / 3), resample=Image.BILINEAR)
      frame.paste(turned, (int(170 + 60 * np.sin(2 * np.pi * t / 5)), 90))
      container.mux(stream.encode(av.VideoFrame.from_image(frame)))
    container.mux(stream.encode(None))
  return portrait, path


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default=str(ROOT / 'configs' / 'vox.py'))
  parser.add_argument('--checkpoint', default=None)
  parser.add_argument('--seconds', type=float, default=20.0, help='length of the driving clip')
  parser.add_argument('--out', default=None, help='also record the session to this mp4')
  parser.add_argument('--cold', action='store_true',
                      help='start with an empty compilation cache (else the one of earlier runs)')
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    ckpt = args.checkpoint or random_checkpoint(args.config, tmp / 'checkpoint')
    portrait, clip = face_clip(tmp / 'driving.mp4', args.seconds)
    command = [sys.executable, '-m', 'g3fa_jax.live', '--checkpoint', str(ckpt),
               '--source', str(portrait), '--driving', str(clip), '--no-window']
    if args.out:
      command += ['--out', args.out]
    env = dict(os.environ)
    if args.cold:
      env['JAX_COMPILATION_CACHE_DIR'] = str(tmp / 'compilation_cache')
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stderr:
      if line.startswith('live: running'):
        print(f'started in {time.perf_counter() - start:.1f} s (load, crop the source, compile)')
        break
    out, err = process.communicate()
    if process.returncode:
      sys.exit(f'the live command failed: {err.strip().splitlines()[-1:]}')
    print(out.strip())


if __name__ == '__main__':
  main()
