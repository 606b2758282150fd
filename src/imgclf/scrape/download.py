"""The one shared, safe image downloader (used by `scrape reddit`, `scrape web` and `predict URL`).

What "safe" means here:

- Only `http` and `https` URLs, on the first request and on every redirect; at most
  `MAX_REDIRECTS` (5) redirects, followed by hand so each hop is checked.
- Connect and read timeouts on every request, plus a total time budget per download.
- The body is streamed and counted as bytes arrive; the download stops at `max_bytes`
  whatever `Content-Length` says (a lying or missing header cannot blow memory).
- Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff and
  "equal jitter" (Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015),
  honouring `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) and Reddit's
  `x-ratelimit-reset` (seconds until the rate-limit window resets).
- The content decides, never the URL or the `Content-Type` header: magic bytes first
  (`imgclf.images.sniff_format`), then a full decode with Pillow (`imgclf.images.open_image`),
  so HTML pages served as `image/jpeg`, truncated files, decompression bombs and unknown
  formats are rejected with a reason.
- Known placeholder images are rejected with reason `"placeholder"`: imgur answers a removed
  image by redirecting to `https://i.imgur.com/removed.png`, a 161x81 pixel PNG. We detect it
  by the final URL's path (`/removed.png` on an imgur host) and, in case imgur serves it without
  the redirect, by its size (exactly 161x81 pixels from an imgur host).
- Callers name files from `DownloadResult.sha256` and `.ext` (content hash + detected
  extension), never from the URL or headers.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from imgclf.errors import ImageError
from imgclf.images import FORMAT_EXTENSIONS, open_image, sniff_format

#: Most redirects followed for one URL.
MAX_REDIRECTS: int = 5

#: Longest wait honoured from a `Retry-After` / `x-ratelimit-reset` header, in seconds.
MAX_RETRY_WAIT: float = 120.0

#: Size of a streamed chunk, in bytes.
CHUNK_BYTES: int = 64 * 1024

#: User-Agent sent with every request (Reddit and many sites refuse the python-requests default).
DEFAULT_USER_AGENT: str = "imgclf/0.1 (image-classification dataset builder)"

#: Known placeholder images: (host suffix, final URL path) and the placeholder size in pixels.
IMGUR_HOSTS: tuple[str, ...] = ("imgur.com",)
IMGUR_REMOVED_PATH: str = "/removed.png"
IMGUR_REMOVED_SIZE: tuple[int, int] = (161, 81)

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
#: Failure reasons worth retrying on a later run (the network, not the content, was at fault).
TRANSIENT_REASONS: frozenset[str] = frozenset({"timeout", "connection_error", "http_429", "rate_limited"})


class DownloadError(ImageError):
    """A URL could not be downloaded (network, HTTP status, redirects, size cap).

    Same arguments as `ImageError`: `path` is the URL, `reason` one of `"unsupported_scheme"`,
    `"too_many_redirects"`, `"timeout"`, `"connection_error"`, `"http_<status>"`,
    `"too_large"`, `"empty"`.
    """


def is_transient(reason: str) -> bool:
    """Returns True if a failure `reason` may go away on a later try (timeouts, 429, 5xx)."""
    return reason in TRANSIENT_REASONS or reason.startswith("http_5")


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


@dataclass
class DownloadResult:
    """One image downloaded and verified by `fetch_image`.

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


@dataclass
class RawResponse:
    """A body fetched by `fetch_bytes` (not yet checked as an image)."""

    url: str
    final_url: str
    data: bytes
    content_type: str


class HostThrottle:
    """Spaces requests to the same host by at least `delay` seconds (politeness), thread-safe.

    Args:
        delay: float. Seconds between two requests to one host; 0 disables the throttle.
    """

    def __init__(self, delay: float):
        self.delay = float(delay)
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._delays: dict[str, float] = {}

    @staticmethod
    def _host(url: str) -> str:
        return (urlsplit(url).netloc or "").lower().rsplit("@", 1)[-1]

    def set_delay(self, url: str, delay: float) -> None:
        """Uses `max(self.delay, delay)` seconds for `url`'s host (e.g. robots.txt `Crawl-delay`)."""
        with self._lock:
            self._delays[self._host(url)] = max(self.delay, float(delay))

    def wait(self, url: str) -> None:
        """Blocks until a request to `url`'s host may be sent."""
        host = self._host(url)
        delay = self._delays.get(host, self.delay)
        if delay <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + delay
        if slot > now:
            time.sleep(slot - now)


def new_session(user_agent: str = DEFAULT_USER_AGENT, pool: int = 16) -> Any:
    """Returns a `requests.Session` with our User-Agent, no retries of its own, and a connection
    pool of `pool` connections per host.

    `trust_env` stays on, so standard `HTTP(S)_PROXY` / `NO_PROXY` settings are honoured.
    """
    import requests
    from requests.adapters import HTTPAdapter

    s = requests.Session()
    s.headers["User-Agent"] = user_agent
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def _check_scheme(url: str, original: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise DownloadError(clean_url(original), "unsupported_scheme", f"only http and https URLs are fetched, got {scheme or 'none'!r}")


def retry_wait(headers: Any, attempt: int, backoff: float) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    Args:
        headers: mapping. Response headers, or None after a connection error.
        attempt: int. 0 for the first retry.
        backoff: float. Base delay in seconds; the exponential part is `backoff * 2**attempt`.

    Returns:
        float: the server's `Retry-After` (seconds or HTTP date) or `x-ratelimit-reset`
        (seconds) when given, capped at `MAX_RETRY_WAIT`; otherwise exponential backoff with
        equal jitter, `d/2 + uniform(0, d/2)` where `d = backoff * 2**attempt`.
    """
    if headers is not None:
        for key in ("Retry-After", "x-ratelimit-reset"):
            raw = headers.get(key)
            if raw is None:
                continue
            raw = str(raw).strip()
            try:
                secs = float(raw)
                if secs > 1e9:  # an epoch timestamp rather than a delay
                    secs -= time.time()
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(raw)
                except (TypeError, ValueError):
                    continue
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                secs = (when - datetime.now(timezone.utc)).total_seconds()
            return min(max(secs, 0.0), MAX_RETRY_WAIT)
    d = backoff * (2**attempt)
    return min(d / 2 + random.uniform(0, d / 2), MAX_RETRY_WAIT)


def _request(session: Any, url: str, original: str, *, timeout: tuple[float, float], retries: int,
             backoff: float, throttle: HostThrottle | None) -> Any:
    """One hop (no redirect following) with retries; returns a streaming response."""
    import requests

    last_reason, last_detail = "connection_error", ""
    for attempt in range(retries + 1):
        if throttle is not None:
            throttle.wait(url)
        headers = None
        try:
            resp = session.get(url, stream=True, allow_redirects=False, timeout=timeout)
        except requests.exceptions.Timeout as exc:
            last_reason, last_detail = "timeout", f"no answer within {timeout[0]:g}s connect / {timeout[1]:g}s read ({type(exc).__name__})"
        except requests.exceptions.RequestException as exc:
            last_reason, last_detail = "connection_error", type(exc).__name__
        else:
            if resp.status_code == 429 or 500 <= resp.status_code < 600:
                headers = resp.headers
                last_reason, last_detail = f"http_{resp.status_code}", f"HTTP {resp.status_code} after {attempt + 1} tries"
                resp.close()
            else:
                return resp
        if attempt < retries:
            time.sleep(retry_wait(headers, attempt, backoff))
    raise DownloadError(clean_url(original), last_reason, last_detail)


def _read_capped(resp: Any, original: str, max_bytes: int, deadline: float) -> bytes:
    """Reads a streaming body, stopping at `max_bytes` and at the `deadline` (monotonic)."""
    import requests

    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        resp.close()
        raise DownloadError(clean_url(original), "too_large", f"Content-Length {int(declared):,} > cap {max_bytes:,} bytes")
    buf = bytearray()
    try:
        for chunk in resp.iter_content(CHUNK_BYTES):
            buf += chunk
            if len(buf) > max_bytes:
                raise DownloadError(clean_url(original), "too_large", f"more than the cap of {max_bytes:,} bytes")
            if time.monotonic() > deadline:
                raise DownloadError(clean_url(original), "timeout", "download took longer than its time budget")
    except requests.exceptions.Timeout:
        raise DownloadError(clean_url(original), "timeout", "the server stopped sending") from None
    except requests.exceptions.RequestException as exc:
        # The connection broke mid-body (e.g. an IncompleteRead): the network's fault, worth a later try.
        raise DownloadError(clean_url(original), "connection_error",
                            f"connection broke after {len(buf):,} bytes ({type(exc).__name__})") from None
    finally:
        resp.close()
    return bytes(buf)


def fetch_bytes(
    url: str,
    *,
    max_bytes: int = 20_000_000,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    total_timeout: float | None = None,
    session: Any = None,
    throttle: HostThrottle | None = None,
) -> RawResponse:
    """Downloads a URL safely (scheme check, redirects, timeouts, retries, byte cap); no content check.

    Args: as `fetch_image`.

    Returns:
        RawResponse: `url`, `final_url`, `data` (bytes) and the server's `content_type`.

    Raises:
        DownloadError: reason `"unsupported_scheme"`, `"too_many_redirects"`, `"timeout"`,
            `"connection_error"`, `"http_<status>"` (after retries for 429 / 5xx), `"too_large"`.
    """
    own = session is None
    session = session or new_session()
    deadline = time.monotonic() + (total_timeout if total_timeout is not None else max(120.0, 4 * read_timeout))
    try:
        _check_scheme(url, url)
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            resp = _request(session, current, url, timeout=(connect_timeout, read_timeout), retries=retries,
                            backoff=backoff, throttle=throttle)
            if resp.status_code in _REDIRECT_CODES and resp.headers.get("Location"):
                nxt = urljoin(current, resp.headers["Location"])
                resp.close()
                _check_scheme(nxt, url)
                current = nxt
                continue
            if resp.status_code != 200:
                resp.close()
                raise DownloadError(clean_url(url), f"http_{resp.status_code}", f"HTTP {resp.status_code} from {clean_url(current)}")
            data = _read_capped(resp, url, max_bytes, deadline)
            return RawResponse(clean_url(url), clean_url(current), data, resp.headers.get("Content-Type", ""))
        raise DownloadError(clean_url(url), "too_many_redirects", f"more than {MAX_REDIRECTS} redirects")
    finally:
        if own:
            session.close()


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<!--", b"<?xml", b"<meta", b"<title", b"<script"))


def _is_imgur(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in IMGUR_HOSTS)


def check_image(raw: RawResponse) -> DownloadResult:
    """Checks downloaded bytes as an image: magic bytes, full decode, placeholders.

    Args:
        raw: RawResponse from `fetch_bytes`.

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
        if _looks_like_html(data):
            raise ImageError(url, "html", f"the server sent an HTML page (Content-Type {raw.content_type or 'none'!r}), not an image")
        raise ImageError(url, "unsupported_format", f"unknown signature {data[:8].hex()} (Content-Type {raw.content_type or 'none'!r})")
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
) -> DownloadResult:
    """Downloads one image URL safely and verifies it is a whole, real image.

    Args:
        url: str. An `http` or `https` URL.
        max_bytes: int, default 20,000,000. Hard cap on the body, in bytes, counted as bytes
            arrive (Content-Length is not trusted).
        connect_timeout: float, default 10.0. Seconds to establish a connection.
        read_timeout: float, default 30.0. Seconds to wait for each piece of the answer.
        retries: int, default 3. Extra tries after a connection error, timeout, HTTP 429 or 5xx.
        session: `requests.Session` or None. Reused for connection pooling; None makes one.
        backoff: float, default 1.0. Base of the exponential backoff, in seconds.
        total_timeout: float or None. Time budget for the whole body, in seconds; None means
            `max(120, 4 * read_timeout)`.
        throttle: HostThrottle or None. Spaces requests per host (web scraping politeness).

    Returns:
        DownloadResult: bytes, final URL, detected format and extension, sha256, width, height.

    Raises:
        DownloadError (an `ImageError`): network failures, see `fetch_bytes`.
        ImageError: content rejects, see `check_image` (`"html"`, `"truncated"`,
            `"decompression_bomb"`, `"unsupported_format"`, `"placeholder"`, ...).

    Example:
        >>> r = fetch_image("https://i.redd.it/abc.jpg")
        >>> r.sha256[:16] + r.ext
    """
    raw = fetch_bytes(url, max_bytes=max_bytes, connect_timeout=connect_timeout, read_timeout=read_timeout,
                      retries=retries, backoff=backoff, total_timeout=total_timeout, session=session,
                      throttle=throttle)
    return check_image(raw)


def origin_of(url: str) -> str:
    """Returns `scheme://host[:port]` of `url` (lower-cased), e.g. for robots.txt."""
    p = urlsplit(url)
    return urlunsplit((p.scheme.lower(), (p.netloc or "").lower().rsplit("@", 1)[-1], "", "", ""))
