"""Download failures: `DownloadError` and which of its reasons may go away on a later try."""

from __future__ import annotations

from imgclf.errors import ImageError

#: Failure reasons worth retrying on a later run (the network, not the content, was at fault).
TRANSIENT_REASONS: frozenset[str] = frozenset({"timeout", "connection_error", "http_429", "rate_limited"})


class DownloadError(ImageError):
    """A URL could not be downloaded (network, HTTP status, redirects, size cap, noai).

    Same arguments as `ImageError`: `path` is the URL, `reason` one of `"unsupported_scheme"`,
    `"too_many_redirects"`, `"timeout"`, `"connection_error"`, `"http_<status>"`,
    `"too_large"`, `"empty"`, `"noai"`.
    """


def is_transient(reason: str) -> bool:
    """Tells whether a failure `reason` may go away on a later try.

    Args:
        reason: str. A `DownloadError` / `ImageError` reason, e.g. `"timeout"`, `"http_503"`.

    Returns:
        bool: True for `TRANSIENT_REASONS` and every `http_5xx`.
    """
    return reason in TRANSIENT_REASONS or reason.startswith("http_5")
