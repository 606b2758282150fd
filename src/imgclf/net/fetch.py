"""`fetch_bytes(url)`: one URL's body, fetched safely; no content check (see `imgclf.net.image`).

What "safely" means here:

- Only `http` and `https` URLs, on the first request and on every redirect; at most
  `MAX_REDIRECTS` (5) redirects, followed by hand so each hop is checked (and, with
  `imgclf.net.safety.guarded_session`, each hop's address).
- Connect and read timeouts on every request, and one **time budget per URL**
  (`total_timeout`, default `imgclf.net.budget.DEFAULT_URL_BUDGET` = 120 s) across all its
  tries, redirects, backoff waits and the body (`imgclf.net.budget.UrlBudget`). Each read waits
  at most the smaller of `read_timeout` and the budget left, so a server that drips one byte
  at a time is cut off too.
- The body is streamed and counted as bytes arrive (after decoding any `Content-Encoding`);
  the download stops at `max_bytes` whatever `Content-Length` says.
- Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff and
  equal jitter, honouring `Retry-After` and `x-ratelimit-reset` (`imgclf.net.budget.retry_wait`),
  as long as the budget lasts.
- `X-Robots-Tag` directives are read from every response (`RawResponse.robots_tags`); an
  answer whose directives are in `reject_directives` (e.g. `noai`) is refused before its body
  is read (reason `"noai"`).

`requests` and `urllib3` are imported when a request is made, not with the module.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from imgclf.net.budget import DEFAULT_URL_BUDGET, UrlBudget, retry_wait
from imgclf.net.directives import header_lines, product_token, robots_directives
from imgclf.net.errors import DownloadError
from imgclf.net.session import DEFAULT_USER_AGENT, new_session
from imgclf.net.throttle import HostThrottle
from imgclf.net.urls import check_scheme, clean_url

#: Most redirects followed for one URL.
MAX_REDIRECTS: int = 5

#: Largest piece read at once from a body, in bytes.
CHUNK_BYTES: int = 64 * 1024

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


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
            see `imgclf.net.directives.robots_directives`), e.g. `{"noai", "noindex"}`.
        truncated: bool. True if the body was cut at `max_bytes` (`keep_prefix=True` only).
    """

    url: str
    final_url: str
    data: bytes
    content_type: str
    status: int = 200
    robots_tags: frozenset[str] = frozenset()
    truncated: bool = False


def _tries(n: int) -> str:
    return f"{n} {'try' if n == 1 else 'tries'}"


def _request(
    session: Any,
    url: str,
    *,
    original: str,
    timeout: tuple[float, float],
    retries: int,
    backoff: float,
    throttle: HostThrottle | None,
    budget: UrlBudget,
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
    detail = f"{last_detail}; {budget.note()}" if out_of_time else f"{last_detail} after {_tries(budget.tries)}"
    raise DownloadError(clean_url(original), last_reason, detail)


def _read_capped(
    resp: Any, original: str, max_bytes: int, budget: UrlBudget, read_timeout: float, keep_prefix: bool = False
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


def _follow_redirects(url: str, request: Any) -> tuple[Any, str]:
    """Requests `url` and its redirects (each target's scheme checked) until a 2xx answer.

    Args:
        url: str. The URL asked for.
        request: callable `(hop_url) -> response`, `_request` with its settings bound.

    Returns:
        tuple `(response, final_url)`: the streaming 2xx response and the URL that gave it.

    Raises:
        DownloadError: `"unsupported_scheme"`, `"too_many_redirects"`, `"http_<status>"`, or
            `_request`'s reasons.
    """
    check_scheme(url, url)
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        resp = request(current)
        if resp.status_code in _REDIRECT_CODES and resp.headers.get("Location"):
            nxt = urljoin(current, resp.headers["Location"])
            resp.close()
            check_scheme(nxt, url)
            current = nxt
            continue
        if not 200 <= resp.status_code < 300:
            resp.close()
            raise DownloadError(
                clean_url(url), f"http_{resp.status_code}", f"HTTP {resp.status_code} from {clean_url(current)}"
            )
        return resp, current
    raise DownloadError(clean_url(url), "too_many_redirects", f"more than {MAX_REDIRECTS} redirects")


def _refuse_directives(resp: Any, url: str, tags: frozenset[str], reject: frozenset[str] | set[str]) -> None:
    """Closes `resp` and raises `"noai"` if its `X-Robots-Tag` directives include a rejected one."""
    hits = sorted(tags & set(reject))
    if hits:
        resp.close()
        raise DownloadError(
            clean_url(url),
            "noai",
            f"X-Robots-Tag: {', '.join(hits)} (the site asks that it not be used for AI training)",
        )


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
        max_bytes: int, default 20,000,000. Hard cap on the body, in bytes, counted as bytes
            arrive (Content-Length is not trusted).
        connect_timeout: float, default 10.0. Seconds to establish a connection.
        read_timeout: float, default 30.0. Seconds to wait for each piece of the answer.
        retries: int, default 3. Extra tries after a connection error, timeout, HTTP 429 or 5xx.
        backoff: float, default 1.0. Base of the exponential backoff, in seconds.
        total_timeout: float or None, default None. Time budget of this URL across every try,
            redirect, backoff wait and the body, in seconds; None means `DEFAULT_URL_BUDGET` (120).
        session: `requests.Session` or None, default None. Reused for connection pooling;
            `imgclf.net.safety.guarded_session()` refuses private addresses. None makes one.
        throttle: HostThrottle or None, default None. Spaces requests per host (politeness).
        reject_directives: set of str, default empty. `X-Robots-Tag` directives (lower case)
            that make the download fail with reason `"noai"` before the body is read, e.g.
            `imgclf.net.directives.NOAI_DIRECTIVES`.
        robots_token: str or None, default None. Our product token, for `X-Robots-Tag:
            <token>: ...` lines; None derives it from the session's User-Agent.
        keep_prefix: bool, default False. Keep the first `max_bytes` of a longer body
            (`RawResponse.truncated` is then True) instead of failing with `"too_large"`
            (robots.txt, RFC 9309 §2.5).

    Returns:
        RawResponse: `url`, `final_url`, `data`, `content_type`, `status` (2xx), `robots_tags`.

    Raises:
        DownloadError: reason `"unsupported_scheme"`, `"too_many_redirects"`, `"timeout"`
            (also when the budget runs out), `"connection_error"`, `"http_<status>"` (after
            retries for 429 / 5xx), `"too_large"`, `"noai"`.
        imgclf.net.safety.UnsafeAddressError: from a guarded session, passed through.
    """
    own = session is None
    session = session or new_session()
    budget = UrlBudget(total_timeout if total_timeout is not None else DEFAULT_URL_BUDGET)
    token = robots_token or product_token(str(session.headers.get("User-Agent", DEFAULT_USER_AGENT)))

    request = functools.partial(
        _request,
        session,
        original=url,
        timeout=(connect_timeout, read_timeout),
        retries=retries,
        backoff=backoff,
        throttle=throttle,
        budget=budget,
    )
    try:
        resp, final = _follow_redirects(url, request)
        tags = robots_directives(header_lines(resp, "X-Robots-Tag"), token)
        _refuse_directives(resp, url, tags, reject_directives)
        data, truncated = _read_capped(resp, url, max_bytes, budget, read_timeout, keep_prefix)
        return RawResponse(
            clean_url(url),
            clean_url(final),
            data,
            resp.headers.get("Content-Type", ""),
            status=resp.status_code,
            robots_tags=tags,
            truncated=truncated,
        )
    finally:
        if own:
            session.close()
