"""`fetch_image(url)`: one image downloaded safely and verified; `check_image` for bytes already fetched.

The content decides, never the URL or the `Content-Type` header: magic bytes first
(`imgclf.images.sniff_format`), then a full decode with Pillow (`imgclf.images.open_image`),
so HTML pages served as `image/jpeg`, truncated files, decompression bombs and unknown formats
are rejected with a reason.

Known placeholder images are rejected with reason `"placeholder"`: imgur answers a removed
image by redirecting to `https://i.imgur.com/removed.png`, a 161x81 pixel PNG. We detect it by
the final URL's path (`/removed.png` on an imgur host) and, in case imgur serves it without the
redirect, by its size (exactly 161x81 pixels from an imgur host).

Callers name files from the content (`DownloadResult.file_name`: a prefix of the SHA-256 and
the detected extension), never from the URL or headers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from imgclf.errors import ImageError
from imgclf.images import FORMAT_EXTENSIONS, open_image, sniff_format
from imgclf.net.directives import NOAI_DIRECTIVES
from imgclf.net.fetch import RawResponse, fetch_bytes
from imgclf.net.throttle import HostThrottle

#: Hex characters of the SHA-256 used in file names (64 bits: collisions are negligible).
HASH_PREFIX: int = 16

#: Known placeholder images: (host suffix, final URL path) and the placeholder size in pixels.
IMGUR_HOSTS: tuple[str, ...] = ("imgur.com",)
IMGUR_REMOVED_PATH: str = "/removed.png"
IMGUR_REMOVED_SIZE: tuple[int, int] = (161, 81)

_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<!--", b"<?xml", b"<meta", b"<title", b"<script")


@dataclass
class DownloadResult:
    """One image downloaded and verified by `fetch_image` / `check_image`.

    Attributes:
        url: str. The URL asked for (credentials removed).
        final_url: str. The URL after redirects (credentials removed).
        data: bytes. The encoded image exactly as served.
        format: str. Pillow format name, e.g. `"JPEG"`, `"PNG"` (from the content).
        ext: str. Extension for that format, e.g. `".jpg"`.
        sha256: str. Hex SHA-256 of `data`.
        width: int. Width in pixels (after EXIF rotation).
        height: int. Height in pixels (after EXIF rotation).
        content_type: str. The server's `Content-Type` (informative only, never trusted).
    """

    url: str
    final_url: str
    data: bytes
    format: str
    ext: str
    sha256: str
    width: int
    height: int
    content_type: str = ""

    @property
    def bytes(self) -> int:
        """Size of `data`, in bytes."""
        return len(self.data)

    @property
    def file_name(self) -> str:
        """The content's file name, `<sha256[:HASH_PREFIX]><ext>`, e.g. `"3f2a9c0d1e4b5a67.jpg"`."""
        return f"{self.sha256[:HASH_PREFIX]}{self.ext}"


def looks_like_html(data: bytes) -> bool:
    """True if `data` starts like an HTML / XML document (after a BOM and white space)."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(_HTML_STARTS)


def _is_imgur(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in IMGUR_HOSTS)


def check_image(raw: RawResponse) -> DownloadResult:
    """Checks downloaded bytes as an image: magic bytes, full decode, placeholders.

    Args:
        raw: RawResponse from `imgclf.net.fetch.fetch_bytes`.

    Returns:
        DownloadResult.

    Raises:
        ImageError: reason `"empty"`, `"html"`, `"unsupported_format"`, `"truncated"`,
            `"decompression_bomb"`, `"not_an_image"` or `"placeholder"`.
    """
    url, data = raw.url, raw.data
    if not data:
        raise ImageError(url, "empty", "the server sent an empty body")
    fmt = sniff_format(data[:16])
    if fmt is None:
        if looks_like_html(data):
            raise ImageError(
                url, "html", f"the server sent an HTML page (Content-Type {raw.content_type or 'none'!r}), not an image"
            )
        raise ImageError(
            url,
            "unsupported_format",
            f"unknown signature {data[:8].hex()} (Content-Type {raw.content_type or 'none'!r})",
        )
    img = open_image(data, name=url)
    if _is_imgur(raw.final_url) and urlsplit(raw.final_url).path == IMGUR_REMOVED_PATH:
        raise ImageError(url, "placeholder", f"imgur redirected to its 'removed' image ({raw.final_url})")
    if (_is_imgur(raw.final_url) or _is_imgur(url)) and img.size == IMGUR_REMOVED_SIZE:
        raise ImageError(url, "placeholder", "imgur's 161x81 'removed' image")
    return DownloadResult(
        url=url,
        final_url=raw.final_url,
        data=data,
        format=fmt,
        ext=FORMAT_EXTENSIONS.get(fmt, ".img"),
        sha256=hashlib.sha256(data).hexdigest(),
        width=img.width,
        height=img.height,
        content_type=raw.content_type,
    )


def fetch_image(
    url: str,
    *,
    max_bytes: int = 20_000_000,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
    retries: int = 3,
    session: Any = None,
    backoff: float = 1.0,
    total_timeout: float | None = None,
    throttle: HostThrottle | None = None,
    respect_noai: bool = False,
    robots_token: str | None = None,
) -> DownloadResult:
    """Downloads one image URL safely and verifies it is a whole, real image.

    Args:
        url: str. An `http` or `https` URL.
        max_bytes: int, default 20,000,000. Hard cap on the body, in bytes, counted as bytes
            arrive (Content-Length is not trusted).
        connect_timeout: float, default 10.0. Seconds to establish a connection.
        read_timeout: float, default 30.0. Seconds to wait for each piece of the answer.
        retries: int, default 3. Extra tries after a connection error, timeout, HTTP 429 or 5xx.
        session: `requests.Session` or None, default None. Reused for connection pooling; None
            makes one. `imgclf.net.safety.guarded_session()` refuses private addresses.
        backoff: float, default 1.0. Base of the exponential backoff, in seconds.
        total_timeout: float or None, default None. Time budget of this URL in seconds, across
            every try, redirect, wait and the body; None means `DEFAULT_URL_BUDGET` (120 s).
        throttle: HostThrottle or None, default None. Spaces requests per host (web scraping
            politeness).
        respect_noai: bool, default False. Refuse an image whose response carries
            `X-Robots-Tag: noai` or `noimageai` (reason `"noai"`). The scrapers turn it on
            (`ScrapeConfig.respect_noai`); `predict` does not collect data and leaves it off.
        robots_token: str or None, default None. Our product token for `X-Robots-Tag: <token>:
            ...`; None derives it from the session's User-Agent.

    Returns:
        DownloadResult: bytes, final URL, detected format and extension, sha256, width, height.

    Raises:
        DownloadError (an `ImageError`): network failures and `"noai"`, see `fetch_bytes`.
        ImageError: content rejects, see `check_image` (`"html"`, `"truncated"`,
            `"decompression_bomb"`, `"unsupported_format"`, `"placeholder"`, ...).
        imgclf.net.safety.UnsafeAddressError: a guarded session refused an address.

    Example:
        >>> r = fetch_image("https://i.redd.it/abc.jpg")
        >>> r.file_name  # '<sha256[:16]>.jpg'
    """
    raw = fetch_bytes(
        url,
        max_bytes=max_bytes,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries=retries,
        backoff=backoff,
        total_timeout=total_timeout,
        session=session,
        throttle=throttle,
        reject_directives=NOAI_DIRECTIVES if respect_noai else frozenset(),
        robots_token=robots_token,
    )
    return check_image(raw)
