"""Small filesystem helpers: atomic writes, so no stage ever leaves a half-written file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Writes `data` to `path` through a temporary file in the same folder and `os.replace`.

    A crash (even `kill -9`) leaves either the old file or the new one, never a partial one;
    the temporary file starts with `.` so no stage reads it as an image.

    Args:
        path: destination file; its folder is created if missing.
        data: bytes to write.
        fsync: bool, default True. Flush to disk before the rename (survives power loss, not
            only a killed process). Bulk writers of many small re-creatable files pass False.

    Returns:
        Path: `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


@contextlib.contextmanager
def atomic_text_file(path: str | os.PathLike) -> Iterator[TextIO]:
    """A text file (UTF-8, no newline translation) that appears at `path` whole or not at all.

    For writers that stream what they write (a table of millions of rows) rather than hold it:
    the rows go to a temporary file in the same folder, flushed to disk and renamed onto `path`
    when the block ends; an exception (or a killed process) leaves no partial `path`.

    Args:
        path: destination file; its folder is created if missing.

    Yields:
        TextIO: the file to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Like `atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Writes `obj` as indented JSON, atomically (see `atomic_write_bytes`)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def tmp_path_for(path: str | os.PathLike) -> Path:
    """Returns a hidden temporary sibling of `path` (for writers that need a file name, e.g.
    `PIL.Image.save` or `keras.Model.save`); rename it onto `path` with `os.replace`."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


#: Name prefix of the file `--engine ray` writes into an output folder to check that every node
#: sees it (`imgclf.engine.ray.RayExecutor.require`); removed after the check, but left behind
#: when the driver or the cluster's head dies during it.
VISIBILITY_MARKER = ".imgclf-engine-check-"


def is_visibility_marker(path: str | os.PathLike) -> bool:
    """True for a node-visibility check file (`VISIBILITY_MARKER`): a stage ignores it when it
    decides whether an output folder is empty, and clears it with the folder."""
    return Path(path).name.startswith(VISIBILITY_MARKER)
