"""Time per URL: the budget across all its tries, and the wait before each retry.

- `UrlBudget`: one clock per URL across every try, redirect, backoff wait and the body; it
  starts when the first request is sent (a wait for the host's politeness slot does not count).
  A server that accepts the connection and never answers, or drips one byte at a time, costs
  at most the budget, however many retries are allowed.
- `retry_wait`: the server's `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) or
  Reddit's `x-ratelimit-reset` when given, else exponential backoff with "equal jitter"
  (Marc Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
"""

from __future__ import annotations

import email.utils
import random
import time
from datetime import UTC, datetime
from typing import Any

#: Longest wait honoured from a `Retry-After` / `x-ratelimit-reset` header, in seconds.
MAX_RETRY_WAIT: float = 120.0

#: Default time budget of one URL across all its tries, redirects and waits, in seconds.
DEFAULT_URL_BUDGET: float = 120.0


def _header_wait(raw: str) -> float | None:
    """Seconds a `Retry-After` / `x-ratelimit-reset` value asks for, or None if unparseable."""
    try:
        secs = float(raw)
        if secs > 1e9:  # an epoch timestamp rather than a delay
            secs -= time.time()
        return secs
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - datetime.now(UTC)).total_seconds()


def retry_wait(headers: Any, attempt: int, backoff: float) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    Args:
        headers: mapping or None. Response headers, or None after a connection error.
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
            secs = _header_wait(str(raw).strip())
            if secs is not None:
                return min(max(secs, 0.0), MAX_RETRY_WAIT)
    d = backoff * (2**attempt)
    return min(d / 2 + random.uniform(0, d / 2), MAX_RETRY_WAIT)


class UrlBudget:
    """The time budget of one URL across its tries; the clock starts with the first request sent.

    Args:
        seconds: float. The budget, in seconds.

    Attributes:
        seconds: float. The budget.
        tries: int. Requests sent so far (the caller counts them).
    """

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.deadline: float | None = None
        self.started = 0.0
        self.tries = 0

    def start(self) -> None:
        """Starts the clock (once; later calls do nothing)."""
        if self.deadline is None:
            self.started = time.monotonic()
            self.deadline = self.started + self.seconds

    def remaining(self) -> float:
        """Seconds left; infinite before `start`, negative once the budget is spent."""
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def note(self) -> str:
        """Says how much was used, e.g. `"gave up after 3 tries in 1.5 s (time budget per URL: 1.5 s)"`."""
        spent = time.monotonic() - self.started if self.deadline is not None else 0.0
        return (
            f"gave up after {self.tries} {'try' if self.tries == 1 else 'tries'} in {spent:.1f} s "
            f"(time budget per URL: {self.seconds:g} s)"
        )
