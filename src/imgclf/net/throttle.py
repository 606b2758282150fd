"""Politeness: at least `delay` seconds between two requests to one host, across threads."""

from __future__ import annotations

import threading
import time

from imgclf.net.urls import host_key


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

    def set_delay(self, url: str, delay: float) -> None:
        """Uses `max(self.delay, delay)` seconds for `url`'s host (e.g. robots.txt `Crawl-delay`)."""
        with self._lock:
            self._delays[host_key(url)] = max(self.delay, float(delay))

    def delay_for(self, url: str) -> float:
        """Seconds between two requests to `url`'s host (`delay`, or its robots.txt `Crawl-delay`)."""
        with self._lock:
            return self._delays.get(host_key(url), self.delay)

    def wait(self, url: str) -> None:
        """Blocks until a request to `url`'s host may be sent, and takes that turn."""
        host = host_key(url)
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
        host = host_key(url)
        delay = self._delays.get(host, self.delay)
        if delay <= 0:
            return
        with self._lock:
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + delay)
