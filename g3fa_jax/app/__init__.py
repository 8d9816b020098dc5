"""The web app: a Gradio page that runs the animation CLI's pipeline on uploads.

  python -m g3fa_jax.app --checkpoint DIR

`job` (one request: the uploads and settings through `g3fa_jax.animate.pipeline.run`, errors as
one line naming the upload; no Gradio needed), `gradio_import` (the optional dependency), `ui`
(the page: Blocks, one job at a time, progress, the result with its audio).
"""
