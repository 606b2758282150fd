"""The Reddit client of `imgclf scrape reddit`: praw, with prawcore's rate limiting and retries set once.

Credentials and endpoints come the praw way (praw reads them, not us): a `praw.ini` file (the
current folder, then `~/.config/praw.ini`; the section is `praw_site`, default `DEFAULT`) and
`praw_*` environment variables (`praw_client_id`, `praw_client_secret`, `praw_user_agent`...).
A read-only "script" app is enough: https://www.reddit.com/prefs/apps.

**Rate limits and retries are prawcore's, configured once** (`make_reddit`): prawcore paces
requests from Reddit's `x-ratelimit-*` headers and retries connection errors and 5xx; we set
how many times (`ScrapeConfig.retries`), its backoff (exponential with equal jitter, base
`ScrapeConfig.backoff`) and add 429 to the statuses it retries. prawcore has no wait for
`Retry-After`, nor for `x-ratelimit-reset` on a 429 without `x-ratelimit-remaining`: our
requestor (praw's documented `requestor_class` hook) holds the next request until the time
such an answer gave. There is no retry loop of our own. When prawcore's retries are used up on
429s, the scrape stops with one message (`ScrapeError`) after keeping what it has.

praw and prawcore are imported inside the functions that need them.
"""

from __future__ import annotations

import configparser
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imgclf.errors import ScrapeError
from imgclf.net.budget import MAX_RETRY_WAIT, retry_wait

CREDENTIALS_HINT = (
    "create a 'script' app at https://www.reddit.com/prefs/apps, then put client_id, client_secret "
    "and user_agent in the DEFAULT section (or the --praw-site section) of praw.ini in this folder "
    "or ~/.config/praw.ini, or set the environment variables praw_client_id, praw_client_secret "
    "and praw_user_agent (see docs/scraping.md)"
)


class RetryAfterGate:
    """Holds the next Reddit request until the time a 429 / 5xx answer asked for.

    prawcore paces requests from `x-ratelimit-remaining` / `x-ratelimit-reset` on normal
    answers, but ignores `Retry-After` (RFC 9110 §10.2.3) and a 429's `x-ratelimit-reset`
    without `x-ratelimit-remaining`. The gate reads them (`imgclf.net.budget.retry_wait`,
    capped at `MAX_RETRY_WAIT` seconds) and sleeps before the next request, so prawcore's own
    retry of that request waits as long as Reddit asked. Thread-safe.

    Args:
        on_wait: callable(str) or None. Told once per wait, e.g. to print a warning.
    """

    def __init__(self, on_wait: Callable[[str], None] | None = None):
        self.on_wait = on_wait
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.last_status: int | None = None
        self.last_wait: float = 0.0

    def before(self) -> None:
        """Sleeps until a request may be sent."""
        with self._lock:
            delay = self._not_before - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def after(self, response: Any) -> None:
        """Reads a response's `Retry-After` / `x-ratelimit-reset` when it is a 429 or 5xx."""
        status = getattr(response, "status_code", 200)
        self.last_status = status
        if status != 429 and status < 500:
            return
        headers = response.headers
        if headers.get("Retry-After") is None and headers.get("x-ratelimit-reset") is None:
            return
        wait = retry_wait(headers, 0, 0.0)
        self.last_wait = wait
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + wait)
        if self.on_wait is not None and wait > 0:
            self.on_wait(
                f"Reddit answered HTTP {status}; the next request waits {wait:.1f} s as it asked"
                + (f" (capped at {MAX_RETRY_WAIT:g} s)" if wait >= MAX_RETRY_WAIT else "")
            )


def _requestor_class() -> type:
    import prawcore

    class GatedRequestor(prawcore.Requestor):
        """prawcore's Requestor with a `RetryAfterGate` around every request."""

        def __init__(self, *args: Any, gate: RetryAfterGate | None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.gate = gate or RetryAfterGate()

        def request(self, *args: Any, **kwargs: Any) -> Any:
            self.gate.before()
            response = super().request(*args, **kwargs)
            self.gate.after(response)
            return response

    return GatedRequestor


def _retry_strategy(retries: int, backoff: float) -> type:
    """A prawcore `RetryStrategy` class: `retries` retries, equal-jitter exponential backoff."""
    from prawcore.sessions import RetryStrategy

    @dataclass(frozen=True)
    class ImgclfRetries(RetryStrategy):
        left: int = retries

        def _sleep_seconds(self) -> float | None:
            used = retries - self.left
            return None if used <= 0 else retry_wait(None, used - 1, backoff)

        def consume_available_retry(self) -> ImgclfRetries:
            return type(self)(left=self.left - 1)

        def should_retry_on_failure(self) -> bool:
            return self.left > 0

    return ImgclfRetries


def configure_retries(reddit: Any, retries: int, backoff: float = 1.0) -> bool:
    """Sets prawcore's retries of every session of `reddit`: count, backoff, and 429 retried.

    prawcore (2.4 to 4.0) has no public setting for either: its `Session` keeps the retry
    strategy class in `_retry_strategy_class` and the statuses it retries in
    `RETRY_STATUSES`; both are set on the instances.

    Args:
        reddit: praw.Reddit.
        retries: int. Extra tries after a connection error, 429 or 5xx (0 = none).
        backoff: float, default 1.0. Base of the exponential backoff, in seconds.

    Returns:
        bool: False if this prawcore lacks those attributes (its defaults then apply:
        2 retries, 429 not retried).
    """
    from prawcore.sessions import Session

    strategy = _retry_strategy(retries, backoff)
    cores = [getattr(reddit, n, None) for n in ("_core", "_read_only_core", "_authorized_core")]
    done = False
    core: Any  # private attributes of prawcore's Session, set on the instance
    for core in {id(c): c for c in cores if isinstance(c, Session)}.values():
        if not hasattr(core, "_retry_strategy_class"):
            continue
        core._retry_strategy_class = strategy
        core.RETRY_STATUSES = frozenset(Session.RETRY_STATUSES) | {429}
        done = True
    return done


def make_reddit(
    praw_site: str | None = None, *, retries: int = 2, backoff: float = 1.0, gate: RetryAfterGate | None = None
) -> Any:
    """Creates a read-only `praw.Reddit` from praw.ini / `praw_*` environment variables.

    Rate limiting and retries are prawcore's, configured here once (see the module docstring).

    Args:
        praw_site: str or None. praw.ini section; None lets praw choose (`praw_site`
            environment variable, else `DEFAULT`).
        retries: int, default 2. prawcore's retries after a connection error, 429 or 5xx.
        backoff: float, default 1.0. Base of their exponential backoff, in seconds.
        gate: RetryAfterGate or None. Honours `Retry-After`; None makes one.

    Returns:
        praw.Reddit.

    Raises:
        ScrapeError: if the section does not exist or client_id / client_secret / user_agent
            are missing (one message saying how to set them).
    """
    import praw
    from praw.exceptions import MissingRequiredAttributeException

    try:
        reddit = praw.Reddit(
            site_name=praw_site,
            check_for_updates=False,
            check_for_async=False,
            requestor_class=_requestor_class(),
            requestor_kwargs={"gate": gate or RetryAfterGate()},
        )
    except configparser.NoSectionError:
        raise ScrapeError(f"praw.ini has no section named {praw_site!r} (from --praw-site)", CREDENTIALS_HINT) from None
    except MissingRequiredAttributeException as exc:
        m = re.search(r"setting '(\w+)' missing", str(exc))
        what = m.group(1) if m else "client_id / client_secret / user_agent"
        raise ScrapeError(f"Reddit credentials not found: {what} is not set", CREDENTIALS_HINT) from None
    reddit.read_only = True
    configure_retries(reddit, retries, backoff)
    return reddit


def secrets_of(reddit: Any) -> list[str]:
    """The secret values of `reddit`'s configuration (client secret, password, refresh token), to redact."""
    c = reddit.config
    vals = [getattr(c, k, None) for k in ("client_secret", "password", "refresh_token")]
    return [v for v in vals if isinstance(v, str) and v]


def access_token(reddit: Any) -> str | None:
    """The current OAuth access token (to redact it from messages), read without a request."""
    try:
        return reddit._core._authorizer.access_token
    except AttributeError:
        return None
