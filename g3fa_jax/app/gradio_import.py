"""Gradio, the web app's optional dependency (the `app` extra), imported on demand."""

from __future__ import annotations

import os

from g3fa_jax.animate.errors import AnimateError


def import_gradio():
  """The `gradio` module, with its telemetry off; one line saying how to install it if missing."""
  # No calls home: the app runs offline (set before the first import reads it).
  os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
  try:
    import gradio  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise AnimateError(f"the web app needs Gradio ({e}): pip install 'g3fa-jax[app]'") from e
  return gradio
