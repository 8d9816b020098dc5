"""Output paths checked before any work, and folders that a failed run does not leave behind.

  check_output_file(out, '--out')        # before reading anything: one-line OutputPathError
  created = make_dirs(out.parent)        # just before the first write
  try:
    ...write...
  except BaseException:
    remove_empty_dirs(created)           # a failed run leaves no empty folder it made
    raise
"""

from __future__ import annotations

import os
import pathlib


class OutputPathError(ValueError):
  """An output path that cannot be written (a folder where a file is meant, a file on the way)."""


def _nearest_existing(path: pathlib.Path) -> pathlib.Path:
  """The path itself or its closest ancestor that exists."""
  path = pathlib.Path(os.path.abspath(path))
  while not path.exists() and path != path.parent:
    path = path.parent
  return path


def _check_ancestors(path: pathlib.Path, flag: str) -> None:
  """The folders above `path` exist or can be made: the nearest existing one is a writable
  folder, not a file."""
  parent = _nearest_existing(path.parent)
  if not parent.is_dir():
    raise OutputPathError(f'{flag} {path}: {parent} is a file, not a folder; choose a path '
                          'under a folder')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise OutputPathError(f'{flag} {path}: cannot write in {parent} (permission denied); '
                          'choose a path you can write to')


def check_output_file(path: str | os.PathLike, flag: str = 'output') -> pathlib.Path:
  """Checks that a file can be written at `path` (replacing a file there, never a folder).

  Raises OutputPathError (one line, starting with `flag`) when `path` is a folder or a file
  stands where one of its folders should be. Creates nothing.
  """
  path = pathlib.Path(path)
  if path.is_dir():
    raise OutputPathError(f'{flag} {path}: is a folder; name the file to write, e.g. '
                          f'{path / "out.mp4"}')
  _check_ancestors(path, flag)
  return path


def check_output_dir(path: str | os.PathLike, flag: str = 'output') -> pathlib.Path:
  """Checks that `path` is a folder or can be made one (OutputPathError if it is a file, or a
  file stands where one of its folders should be). Creates nothing."""
  path = pathlib.Path(path)
  if path.exists() and not path.is_dir():
    raise OutputPathError(f'{flag} {path}: is a file, not a folder; name a folder (it is '
                          'created if missing)')
  if path.is_dir():
    if not os.access(path, os.W_OK | os.X_OK):
      raise OutputPathError(f'{flag} {path}: cannot write in it (permission denied)')
    return path
  _check_ancestors(path, flag)
  return path


def make_dirs(path: str | os.PathLike) -> list[pathlib.Path]:
  """Makes folder `path` and its missing parents; returns those it made, deepest first."""
  path = pathlib.Path(path)
  missing = []
  probe = pathlib.Path(os.path.abspath(path))
  while not probe.exists() and probe != probe.parent:
    missing.append(probe)
    probe = probe.parent
  path.mkdir(parents=True, exist_ok=True)
  return missing


def remove_empty_dirs(dirs: list[pathlib.Path]) -> None:
  """Removes the folders of `make_dirs`, deepest first, as long as they are empty."""
  for folder in dirs:
    try:
      folder.rmdir()
    except OSError:
      return  # Not empty (something was written there): keep it and its parents.
