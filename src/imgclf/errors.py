"""Errors a user can act on.

Library code raises these; the CLI (`imgclf.cli.main`) turns any `ImgclfError` into one line
on stderr and exit code 1. Messages name the file or value at fault and say what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


class ModelError(ImgclfError):
    """Unknown model name, unusable weights, or an unreadable run directory."""


class ScrapeError(ImgclfError):
    """Scraping cannot start or go on (missing credentials, bad URL list, ...)."""


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
