"""Live animation: a camera (or a video played as if live) drives a portrait in a window.

  python -m g3fa_jax.live --checkpoint DIR --source face.jpg [--camera 0 | --driving video.mp4]

`frames` (a frame and what a frame source is), `clock`, `mailbox` (the latest-frame-only slot
between a capture thread and the model), `paced_video` (a file played at its own frame rate),
`camera` (OpenCV capture), `crop_box` (the smoothed face box), `driver` (motion from a reference
frame the user resets), `keys`, `hud`, `window`, and `loop` (the whole session).
"""
