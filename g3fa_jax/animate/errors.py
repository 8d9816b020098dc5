"""Errors of the animation pipeline: each message is one line naming the file and the problem."""


class AnimateError(Exception):
  """Bad input to the animation pipeline (the CLI prints it as `error: ...` and exits with 2)."""


class MediaError(AnimateError):
  """An image or video that is missing, unreadable, corrupt or empty."""


class NoFaceError(AnimateError):
  """No face was found where the pipeline has to crop one."""


class CheckpointKindError(AnimateError):
  """A checkpoint that is missing or holds other networks than the ones asked for."""
