"""URL helpers of the downloader: credentials out of messages, origins, the scheme check."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from imgclf.net.errors import DownloadError

#: The only URL schemes fetched, on the first request and on every redirect.
SCHEMES: tuple[str, ...] = ("http", "https")

_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


def clean_url(url: str) -> str:
    """Returns `url` without a `user:password@` part, so credentials never reach logs or manifests."""
    return _USERINFO.sub("", url)


def redact(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Returns `text` with every secret value replaced by `***` and URL credentials removed.

    Args:
        text: str. A message, detail or URL.
        secrets: sequence of str, default (). Values that must never be shown (client secret,
            password, tokens). Empty and very short values (< 4 characters) are ignored.

    Returns:
        str: the redacted text.
    """
    text = clean_url(text)
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def origin_of(url: str) -> str:
    """Returns `scheme://host[:port]` of `url` (lower-cased, credentials removed), e.g. for robots.txt."""
    p = urlsplit(url)
    return urlunsplit((p.scheme.lower(), (p.netloc or "").lower().rsplit("@", 1)[-1], "", "", ""))


def host_key(url: str) -> str:
    """Returns `host[:port]` of `url` (lower-cased, credentials removed): one politeness slot per key."""
    return (urlsplit(url).netloc or "").lower().rsplit("@", 1)[-1]


def check_scheme(url: str, original: str) -> None:
    """Refuses a URL that is not http(s).

    Args:
        url: str. The URL about to be requested (the first one or a redirect's target).
        original: str. The URL asked for, named in the error.

    Raises:
        DownloadError: reason `"unsupported_scheme"`.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        raise DownloadError(
            clean_url(original), "unsupported_scheme", f"only http and https URLs are fetched, got {scheme or 'none'!r}"
        )
