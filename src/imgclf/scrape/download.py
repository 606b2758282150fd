"""The one shared, safe image downloader (used by `scrape reddit`, `scrape web` and `predict URL`).

What "safe" means here:

- Only `http` and `https` URLs, on the first request and on every redirect; at most
  `MAX_REDIRECTS` (5) redirects, followed by hand so each hop is checked.
- Connect and read timeouts on every request, and one **time budget per URL** (`total_timeout`,
  default `DEFAULT_URL_BUDGET` = 120 s) across all its tries, redirects, backoff waits and the
  body: a server that accepts the connection and never answers costs at most that, however
  many retries are allowed. The clock starts when the first request is sent (a wait for the
  per-host politeness slot before it does not count). Each read waits at most the smaller of
  `read_timeout` and the budget left, so a server that drips one byte at a time is cut off too.
- The body is streamed and counted as bytes arrive (after decoding any `Content-Encoding`);
  the download stops at `max_bytes` whatever `Content-Length` says.
- Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff and
  "equal jitter" (Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015),
  honouring `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) and Reddit's
  `x-ratelimit-reset` (seconds until the rate-limit window resets), as long as the budget lasts.
- `X-Robots-Tag` directives are read from every response (`RawResponse.robots_tags`); with
  `respect_noai=True` an image whose response says `noai` or `noimageai` (the convention
  img2dataset honours) is refused before its body is read (reason `"noai"`).
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
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from imgclf.errors import ImageError
from imgclf.images import FORMAT_EXTENSIONS, open_image, sniff_format

#: Most redirects followed for one URL.
MAX_REDIRECTS: int = 5

#: Longest wait honoured from a `Retry-After` / `x-ratelimit-reset` header, in seconds.
MAX_RETRY_WAIT: float = 120.0

#: Default time budget of one URL across all its tries, redirects and waits, in seconds.
DEFAULT_URL_BUDGET: float = 120.0

#: Largest piece read at once from a body, in bytes.
CHUNK_BYTES: int = 64 * 1024

#: `X-Robots-Tag` / `<meta name="robots">` directives that ask for no use in AI training
#: (the "noai" convention, honoured by img2dataset). Checked when `respect_noai` is on.
NOAI_DIRECTIVES: frozenset[str] = frozenset({"noai", "noimageai"})

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
    """A URL could not be downloaded (network, HTTP status, redirects, size cap, noai).

    Same arguments as `ImageError`: `path` is the URL, `reason` one of `"unsupported_scheme"`,
    `"too_many_redirects"`, `"timeout"`, `"connection_error"`, `"http_<status>"`,
    `"too_large"`, `"empty"`, `"noai"`.
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
    """A body fetched by `fetch_bytes` (not yet checked as an image).

    Attributes:
        url: str. The URL asked for (credentials removed).
        final_url: str. The URL after redirects (credentials removed).
        data: bytes. The body (decoded from any `Content-Encoding`).
        content_type: str. The server's `Content-Type` (informative only).
        status: int. The final HTTP status (2xx).
        robots_tags: frozenset of str. `X-Robots-Tag` directives that apply to us (lower case,
            see `robots_directives`), e.g. `{"noai", "noindex"}`.
        truncated: bool. True if the body was cut at `max_bytes` (`keep_prefix=True` only).
    """

    url: str
    final_url: str
    data: bytes
    content_type: str
    status: int = 200
    robots_tags: frozenset[str] = frozenset()
    truncated: bool = False


class HostThrottle:
    """Spaces requests to the same host by at least `delay` seconds (politeness), thread-safe.

    A caller takes a turn with `wait` before a request and calls `sent` when the request has
    gone out (its answer's headers arrived, or it failed); the next turn for that host starts
    `delay` seconds after the later of the two, so a thread that was slow to send after its
    turn never shortens the gap before the next request.

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
        """Blocks until a request to `url`'s host may be sent, and takes that turn."""
        host = self._host(url)
        delay = self._delays.get(host, self.delay)
        if delay <= 0:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                pause = self._next.get(host, 0.0) - now
                if pause <= 0:
                    self._next[host] = now + delay
                    return
            time.sleep(pause)

    def sent(self, url: str) -> None:
        """Notes that a request to `url`'s host went out: the next turn is `delay` seconds from now at the earliest."""
        host = self._host(url)
        delay = self._delays.get(host, self.delay)
        if delay <= 0:
            return
        with self._lock:
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + delay)


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
        raise DownloadError(
            clean_url(original), "unsupported_scheme", f"only http and https URLs are fetched, got {scheme or 'none'!r}"
        )


def product_token(user_agent: str) -> str:
    """Returns the product token of a User-Agent, e.g. `"imgclf"` for `"imgclf/0.1 (...)"`.

    robots.txt groups (RFC 9309 §2.2.1), `X-Robots-Tag: <token>: ...` and
    `<meta name="<token>">` are matched against this token, case-insensitively.

    Args:
        user_agent: str. The full User-Agent header.

    Returns:
        str: the leading run of letters, digits, `_` and `-` (RFC 9309 §2.2.1), lower case;
        `"*"` if there is none.
    """
    m = re.match(r"[A-Za-z0-9_-]+", user_agent.strip())
    return m.group(0).lower() if m else "*"


#: Directives whose value follows a colon (Google's list), so `name:` is not a user agent.
_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_UA_PREFIX = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*:\s*(.*)$", re.S)


def robots_directives(values: list[str] | tuple[str, ...], token: str | None = None) -> frozenset[str]:
    """Parses `X-Robots-Tag` header values (or a robots `<meta>` content) into directives.

    A value may start with a user-agent token (`"otherbot: noai"`); it then applies only if
    that token is ours. Several directives are separated by commas. This follows Google's
    documented `X-Robots-Tag` syntax, which the "noai" convention reuses.

    Args:
        values: list of str. One entry per header line (or the meta tag's `content`).
        token: str or None, default None. Our product token (see `product_token`); None
            treats every user-agent-prefixed value as not ours.

    Returns:
        frozenset of str: the directives that apply to us, lower case, without values
        (`"unavailable_after: ..."` gives `"unavailable_after"`).
    """
    out: set[str] = set()
    for value in values:
        if not value:
            continue
        text = str(value)
        m = _UA_PREFIX.match(text)
        if m and m.group(1).lower() not in _VALUED_DIRECTIVES:
            if token is None or m.group(1).lower() != token.lower():
                continue
            text = m.group(2)
        for part in text.split(","):
            name = part.split(":", 1)[0].strip().lower()
            if name:
                out.add(name)
    return frozenset(out)


def _header_lines(resp: Any, name: str) -> list[str]:
    """Every line of header `name` (urllib3 keeps repeated headers apart; requests joins them)."""
    raw_headers = getattr(getattr(resp, "raw", None), "headers", None)
    getlist = getattr(raw_headers, "getlist", None)
    if callable(getlist):
        try:
            return [str(v) for v in getlist(name)]
        except Exception:  # an unusual headers object: fall back to the joined value
            pass
    v = resp.headers.get(name)
    return [v] if v else []


def retry_wait(headers: Any, attempt: int, backoff: float) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    Args:
        headers: mapping. Response headers, or None after a connection error.
        attempt: int. 0 for the first retry.
        backoff: float. Base delay in seconds; the exponential part is `backoff * 2**attempt`.

    Returns:
        float: the server's `Retry-After` (seconds or HTTP date, RFC 9110 §10.2.3) or
        `x-ratelimit-reset` (seconds) when given, capped at `MAX_RETRY_WAIT`; otherwise
        exponential backoff with equal jitter, `d/2 + uniform(0, d/2)` where
        `d = backoff * 2**attempt`.
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
                    when = when.replace(tzinfo=UTC)
                secs = (when - datetime.now(UTC)).total_seconds()
            return min(max(secs, 0.0), MAX_RETRY_WAIT)
    d = backoff * (2**attempt)
    return min(d / 2 + random.uniform(0, d / 2), MAX_RETRY_WAIT)


class _Budget:
    """The time budget of one URL; the clock starts with the first request sent."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.deadline: float | None = None
        self.started = 0.0
        self.tries = 0

    def start(self) -> None:
        if self.deadline is None:
            self.started = time.monotonic()
            self.deadline = self.started + self.seconds

    def remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def note(self) -> str:
        spent = time.monotonic() - self.started if self.deadline is not None else 0.0
        return (
            f"gave up after {self.tries} {'try' if self.tries == 1 else 'tries'} in {spent:.1f} s "
            f"(time budget per URL: {self.seconds:g} s)"
        )


def _request(
    session: Any,
    url: str,
    original: str,
    *,
    timeout: tuple[float, float],
    retries: int,
    backoff: float,
    throttle: HostThrottle | None,
    budget: _Budget,
) -> Any:
    """One hop (no redirect following) with retries inside the budget; returns a streaming response."""
    import requests

    last_reason, last_detail = "connection_error", ""
    out_of_time = False
    for attempt in range(retries + 1):
        if throttle is not None:
            throttle.wait(url)
        budget.start()
        left = budget.remaining()
        if left <= 0:
            out_of_time = True
            break
        t = (min(timeout[0], left), min(timeout[1], left))
        headers = None
        budget.tries += 1
        try:
            try:
                resp = session.get(url, stream=True, allow_redirects=False, timeout=t)
            finally:
                if throttle is not None:
                    throttle.sent(url)
        except requests.exceptions.Timeout as exc:
            last_reason, last_detail = (
                "timeout",
                f"no answer within {t[0]:g} s connect / {t[1]:g} s read ({type(exc).__name__})",
            )
        except requests.exceptions.RequestException as exc:
            last_reason, last_detail = "connection_error", type(exc).__name__
        else:
            if resp.status_code == 429 or 500 <= resp.status_code < 600:
                headers = resp.headers
                last_reason, last_detail = f"http_{resp.status_code}", f"HTTP {resp.status_code}"
                resp.close()
            else:
                return resp
        if attempt < retries:
            wait = retry_wait(headers, attempt, backoff)
            if wait >= budget.remaining():
                out_of_time = True
                last_detail += f"; the next try (in {wait:.1f} s) would pass the budget"
                break
            time.sleep(wait)
    detail = (
        f"{last_detail}; {budget.note()}"
        if out_of_time
        else f"{last_detail} after {budget.tries} {'try' if budget.tries == 1 else 'tries'}"
    )
    raise DownloadError(clean_url(original), last_reason, detail)


def _read_capped(
    resp: Any, original: str, max_bytes: int, budget: _Budget, read_timeout: float, keep_prefix: bool = False
) -> tuple[bytes, bool]:
    """Reads a streaming body, stopping at `max_bytes` and when the budget runs out.

    Reads with `read1` (whatever has arrived, at most `CHUNK_BYTES`) and sets the socket's
    timeout before each read to the smaller of `read_timeout` and the budget left, so neither
    a silent nor a dripping server can hold the download past its budget.

    Returns:
        tuple `(data, truncated)`; `truncated` is True if `keep_prefix` cut the body at `max_bytes`.
    """
    import requests
    import urllib3.exceptions

    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes and not keep_prefix:
        resp.close()
        raise DownloadError(
            clean_url(original), "too_large", f"Content-Length {int(declared):,} > cap {max_bytes:,} bytes"
        )
    raw = resp.raw
    read1 = getattr(raw, "read1", None)
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    buf = bytearray()
    truncated = False
    try:
        while True:
            left = budget.remaining()
            if left <= 0:
                raise DownloadError(
                    clean_url(original),
                    "timeout",
                    f"the body was still arriving ({len(buf):,} bytes) when the budget ran out; {budget.note()}",
                )
            if sock is not None:
                try:
                    sock.settimeout(max(0.001, min(read_timeout, left)))
                except OSError:
                    sock = None
            chunk = (
                read1(CHUNK_BYTES, decode_content=True) if read1 is not None else raw.read(8192, decode_content=True)
            )
            if not chunk:
                break
            buf += chunk
            if len(buf) > max_bytes:
                if keep_prefix:
                    del buf[max_bytes:]
                    truncated = True
                    break
                raise DownloadError(clean_url(original), "too_large", f"more than the cap of {max_bytes:,} bytes")
    except (TimeoutError, urllib3.exceptions.ReadTimeoutError, requests.exceptions.Timeout):
        detail = f"the server stopped sending after {len(buf):,} bytes"
        raise DownloadError(
            clean_url(original), "timeout", f"{detail}; {budget.note()}" if budget.remaining() <= 0.01 else detail
        ) from None
    except (OSError, urllib3.exceptions.HTTPError, requests.exceptions.RequestException) as exc:
        # The connection broke mid-body (e.g. an IncompleteRead): the network's fault, worth a later try.
        raise DownloadError(
            clean_url(original), "connection_error", f"connection broke after {len(buf):,} bytes ({type(exc).__name__})"
        ) from None
    finally:
        resp.close()
    return bytes(buf), truncated


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
    reject_directives: frozenset[str] | set[str] = frozenset(),
    robots_token: str | None = None,
    keep_prefix: bool = False,
) -> RawResponse:
    """Downloads a URL safely (scheme check, redirects, timeouts, retries, budget, byte cap); no content check.

    Args:
        url: str. An `http` or `https` URL.
        max_bytes, connect_timeout, read_timeout, retries, backoff, session, throttle: as
            `fetch_image`.
        total_timeout: float or None, default None. Time budget of this URL across every try,
            redirect, backoff wait and the body, in seconds; None means `DEFAULT_URL_BUDGET` (120).
        reject_directives: set of str, default empty. `X-Robots-Tag` directives (lower case)
            that make the download fail with reason `"noai"` before the body is read, e.g.
            `NOAI_DIRECTIVES`.
        robots_token: str or None, default None. Our product token, for `X-Robots-Tag:
            <token>: ...` lines; None derives it from the session's User-Agent.
        keep_prefix: bool, default False. Keep the first `max_bytes` of a longer body
            (`RawResponse.truncated` is then True) instead of failing with `"too_large"`
            (robots.txt, RFC 9309 §2.5).

    Returns:
        RawResponse: `url`, `final_url`, `data`, `content_type`, `status` (any 2xx) and
        `robots_tags`.

    Raises:
        DownloadError: reason `"unsupported_scheme"`, `"too_many_redirects"`, `"timeout"`
            (also when the budget runs out), `"connection_error"`, `"http_<status>"` (after
            retries for 429 / 5xx), `"too_large"`, `"noai"`.
    """
    own = session is None
    session = session or new_session()
    budget = _Budget(total_timeout if total_timeout is not None else DEFAULT_URL_BUDGET)
    token = robots_token or product_token(str(session.headers.get("User-Agent", DEFAULT_USER_AGENT)))
    try:
        _check_scheme(url, url)
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            resp = _request(
                session,
                current,
                url,
                timeout=(connect_timeout, read_timeout),
                retries=retries,
                backoff=backoff,
                throttle=throttle,
                budget=budget,
            )
            if resp.status_code in _REDIRECT_CODES and resp.headers.get("Location"):
                nxt = urljoin(current, resp.headers["Location"])
                resp.close()
                _check_scheme(nxt, url)
                current = nxt
                continue
            if not 200 <= resp.status_code < 300:
                resp.close()
                raise DownloadError(
                    clean_url(url), f"http_{resp.status_code}", f"HTTP {resp.status_code} from {clean_url(current)}"
                )
            tags = robots_directives(_header_lines(resp, "X-Robots-Tag"), token)
            hits = sorted(tags & set(reject_directives))
            if hits:
                resp.close()
                raise DownloadError(
                    clean_url(url),
                    "noai",
                    f"X-Robots-Tag: {', '.join(hits)} (the site asks that it not be used for AI training)",
                )
            data, truncated = _read_capped(resp, url, max_bytes, budget, read_timeout, keep_prefix)
            return RawResponse(
                clean_url(url),
                clean_url(current),
                data,
                resp.headers.get("Content-Type", ""),
                status=resp.status_code,
                robots_tags=tags,
                truncated=truncated,
            )
        raise DownloadError(clean_url(url), "too_many_redirects", f"more than {MAX_REDIRECTS} redirects")
    finally:
        if own:
            session.close()


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(
        (b"<!doctype", b"<html", b"<head", b"<body", b"<!--", b"<?xml", b"<meta", b"<title", b"<script")
    )


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
        session: `requests.Session` or None. Reused for connection pooling; None makes one.
        backoff: float, default 1.0. Base of the exponential backoff, in seconds.
        total_timeout: float or None, default None. Time budget of this URL in seconds, across
            every try, redirect, wait and the body; None means `DEFAULT_URL_BUDGET` (120 s).
        throttle: HostThrottle or None. Spaces requests per host (web scraping politeness).
        respect_noai: bool, default False. Refuse an image whose response carries
            `X-Robots-Tag: noai` or `noimageai` (reason `"noai"`). The scrapers turn it on
            (`ScrapeConfig.respect_noai`); `predict` does not collect data and leaves it off.
        robots_token: str or None. Our product token for `X-Robots-Tag: <token>: ...`; None
            derives it from the session's User-Agent.

    Returns:
        DownloadResult: bytes, final URL, detected format and extension, sha256, width, height.

    Raises:
        DownloadError (an `ImageError`): network failures and `"noai"`, see `fetch_bytes`.
        ImageError: content rejects, see `check_image` (`"html"`, `"truncated"`,
            `"decompression_bomb"`, `"unsupported_format"`, `"placeholder"`, ...).

    Example:
        >>> r = fetch_image("https://i.redd.it/abc.jpg")
        >>> r.sha256[:16] + r.ext
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


def origin_of(url: str) -> str:
    """Returns `scheme://host[:port]` of `url` (lower-cased), e.g. for robots.txt."""
    p = urlsplit(url)
    return urlunsplit((p.scheme.lower(), (p.netloc or "").lower().rsplit("@", 1)[-1], "", "", ""))
