"""Errors a user can act on.

Library code raises these; the CLI (`imgclf.cli.main`) turns any `ImgclfError` into one line
on stderr and exit code 1. Messages name the file or value at fault and say what to do.
"""

from __future__ import annotations

import difflib
import os
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path


class ImgclfError(Exception):
    """Base class of every error imgclf reports to the user without a traceback.

    Args:
        message: str. What went wrong, naming the file or value at fault.
        hint: str or None, default None. What the user can do about it.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def __reduce__(self) -> str | tuple:
        # pickled with its own arguments, so a map's error crosses process and cluster boundaries
        if type(self).__init__ is ImgclfError.__init__:
            return type(self), (self.message, self.hint)
        return super().__reduce__()


class ConfigError(ImgclfError):
    """A configuration file, key or value is invalid."""


class DataError(ImgclfError):
    """Input data is missing, empty, or unusable (missing folder, empty class, too few images)."""


class ImageError(ImgclfError):
    """An image could not be opened safely.

    Args:
        path: str. The file (or URL) at fault.
        reason: str. A short machine-readable reason, used as a folder / CSV value, e.g.
            `"truncated"`, `"not_an_image"`, `"decompression_bomb"`, `"unsupported_format"`,
            `"too_small"`.
        detail: str, default "". Human-readable detail.
    """

    def __init__(self, path: str, reason: str, detail: str = ""):
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self) -> str | tuple:
        return type(self), (self.path, self.reason, self.detail)


class LoaderError(ImgclfError):
    """A bug while loading one image: the loader raised something other than an `ImageError`.

    An unreadable image is an `ImageError`: counted, recorded with its reason, and the others
    go on. Anything else the per-image loader raises (a bug in imgclf or in a library it calls,
    a downloader that breaks its contract) is a `LoaderError`: the command stops, with one line
    naming the input and the exception. The traceback is kept in a log file
    (`save_traceback`), which the hint names. `KeyboardInterrupt` and other `BaseException`s
    are never turned into one.

    Args:
        name: str. The input being loaded (a path, a URL, an upload's name).
        error: Exception. What the loader raised; also this error's `__cause__`.
    """

    def __init__(self, name: str, error: BaseException):
        self.name = str(name)
        self.error = error
        self.log: Path | None = None
        detail = " ".join(str(error).split())  # one line, whatever the exception says
        super().__init__(
            f"{self.name}: loading it raised {type(error).__name__}" + (f": {detail}" if detail else ""),
            "a bug in imgclf or a library it uses, not a bad image",
        )
        self.__cause__ = error

    def __reduce__(self) -> str | tuple:
        return type(self), (self.name, self.error)

    @property
    def traceback(self) -> str:
        """The original exception's traceback, as Python prints it."""
        return "".join(traceback.format_exception(self.error))

    def save_traceback(self, log: str | os.PathLike | None = None) -> Path:
        """Appends the message and the traceback to a log file, and names it in the hint.

        Args:
            log: path or None, default None. The log file (e.g. `errors.log` in a run folder;
                its folder is created); None = a new file in the system's temporary folder
                (`tempfile.mkstemp`, `imgclf-error-*.log`).

        Returns:
            Path: the log file. Where it cannot be written, the traceback goes to a new
            temporary file instead.
        """
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        text = f"[{stamp}] {self.message}\n{self.traceback}\n"
        path = None
        if log is not None:
            try:
                Path(log).parent.mkdir(parents=True, exist_ok=True)
                with open(log, "a", encoding="utf-8") as f:
                    f.write(text)
                path = Path(log)
            except OSError:
                path = None
        if path is None:
            import tempfile  # the error path only: keeps `imgclf --help` from loading it

            fd, name = tempfile.mkstemp(prefix="imgclf-error-", suffix=".log")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            path = Path(name)
        self.log = path
        self.hint = f"a bug in imgclf or a library it uses, not a bad image; the traceback is in {path}"
        return path


class ModelError(ImgclfError):
    """Unknown model name, unusable weights, or an unreadable run directory."""


class ScrapeError(ImgclfError):
    """Scraping cannot start or go on (missing credentials, bad URL list, ...)."""


class EngineError(ImgclfError):
    """The engine a stage runs on cannot be used: Ray not installed, a cluster that cannot be
    reached, or workers that kept dying (`imgclf.engine`)."""


def suggest(value: str, choices: Iterable[str], n: int = 3) -> str:
    """Returns a "did you mean ...?" phrase for `value` among `choices`, or "".

    Args:
        value: str. What the user typed.
        choices: iterable of str. The valid values.
        n: int, default 3. How many close matches to offer at most.

    Returns:
        str: e.g. `" Did you mean 'xception'?"`, or `""` if nothing is close
        (closeness by `difflib.get_close_matches`, cutoff 0.5).
    """
    matches = difflib.get_close_matches(value, list(choices), n=n, cutoff=0.5)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"
