"""The page: a portrait and a driving video in, the animated video (with its sound) out.

Gradio Blocks with one event queue running one job at a time (one device: jobs wait their turn
instead of sharing it), a progress bar fed by the pipeline, and the pipeline's one-line errors
shown on the page.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

from g3fa_jax.animate.errors import AnimateError
from g3fa_jax.app import job as job_lib
from g3fa_jax.app.gradio_import import import_gradio

TITLE = 'G3FA: animate a portrait'
INTRO = """Upload a **portrait** and a **driving video** (or record one with the webcam): the portrait
moves like the face in the video. The result keeps the video's frame rate and sound. This runs
`python -m g3fa_jax.animate` on the server, one job at a time."""
MOTION_CHOICES = ['relative', 'absolute']
# System fonts only: the page loads nothing from outside the server.
FONTS = ('ui-sans-serif', 'system-ui', 'sans-serif')
MONO_FONTS = ('ui-monospace', 'monospace')


def theme():
  """Gradio's default theme with system fonts (its own would be fetched from Google Fonts)."""
  gr = import_gradio()
  return gr.themes.Default(font=FONTS, font_mono=MONO_FONTS)


def build(animator, checkpoint: str, workdir: str | os.PathLike, inverse_renderer=None,
          max_frames: int = 0):
  """The page (a `gradio.Blocks`, queued one job at a time) for a loaded `Animator`.

  `workdir`: where results are written (one folder per job, removed after an hour).
  `max_frames`: animate at most this many driving frames per job (0: all).
  """
  gr = import_gradio()
  workdir = pathlib.Path(workdir)

  def animate(portrait, driving, motion, find_best_frame, paste_back, side_by_side, crop,
              progress=gr.Progress()):
    settings = job_lib.JobSettings(relative=motion == 'relative',
                                   find_best_frame=bool(find_best_frame),
                                   paste_back=bool(paste_back), side_by_side=bool(side_by_side),
                                   crop=bool(crop))
    progress(0.0, desc='reading the uploads')
    try:
      result = job_lib.run_job(
          animator, checkpoint, portrait, driving, settings, workdir, inverse_renderer,
          max_frames, on_progress=lambda done, total: progress((done, total), desc='animating',
                                                               unit='frames'))
    except AnimateError as e:
      raise gr.Error(str(e), print_exception=False) from e
    audio = 'with the driving audio' if result.audio_kept else 'no audio'
    summary = (f'{result.num_frames} frames at {result.fps:g} fps, {audio}, in '
               f'{result.seconds:.1f} s')
    if settings.find_best_frame:
      summary += f' (best driving frame: {result.initial_frame})'
    return result.out, summary

  with gr.Blocks(title=TITLE, analytics_enabled=False) as page:
    gr.Markdown(f'# {TITLE}\n\n{INTRO}')
    with gr.Row():
      with gr.Column():
        portrait = gr.Image(label='Portrait', type='filepath', sources=['upload', 'clipboard'],
                            elem_id='portrait')
        driving = gr.Video(label='Driving video',
                           sources=['upload', 'webcam'], include_audio=True, elem_id='driving')
      with gr.Column():
        motion = gr.Radio(MOTION_CHOICES, value='relative', label='Motion',
                          info='relative: the driving face\'s movement from its first (or best) '
                               'frame; absolute: its keypoints as they are', elem_id='motion')
        find_best_frame = gr.Checkbox(label='Find the best frame', value=False,
                                      info='start from the driving frame whose pose matches the '
                                           'portrait best', elem_id='find-best-frame')
        paste_back = gr.Checkbox(label='Paste back', value=False,
                                 info='the animated face in the whole portrait',
                                 elem_id='paste-back')
        side_by_side = gr.Checkbox(label='Side by side', value=False,
                                   info='portrait | driving | result', elem_id='side-by-side')
        crop = gr.Checkbox(label='Crop to the face', value=True,
                           info='off for inputs that are face crops already', elem_id='crop')
        button = gr.Button('Animate', variant='primary', elem_id='animate')
      with gr.Column():
        result = gr.Video(label='Result', interactive=False, elem_id='result')
        summary = gr.Textbox(label='Done', interactive=False, elem_id='summary')
    button.click(animate, [portrait, driving, motion, find_best_frame, paste_back, side_by_side,
                           crop], [result, summary], concurrency_limit=1,
                 concurrency_id='device')
  page.queue(default_concurrency_limit=1)
  return page


def launch(animator, checkpoint: str, workdir: str | os.PathLike | None = None,
           inverse_renderer=None, max_frames: int = 0, **launch_kwargs):
  """Builds the page and serves it (`gradio.Blocks.launch`); returns the page.

  `workdir`: where results go (default: a new temporary folder). `launch_kwargs` go to Gradio's
  `launch` (`server_name`, `server_port`, `share`, `inline`, `prevent_thread_lock`, ...); in a
  notebook it returns at once and shows the page inline.
  """
  workdir = str(workdir or tempfile.mkdtemp(prefix='g3fa-app-'))
  page = build(animator, checkpoint, workdir, inverse_renderer, max_frames)
  launch_kwargs.setdefault('ssr_mode', False)  # no Node server
  page.launch(theme=theme(), allowed_paths=[workdir], show_error=True, **launch_kwargs)
  return page
