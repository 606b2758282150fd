"""robots.txt (RFC 9309) for `imgclf scrape web`: fetched once per origin and run, obeyed for every URL.

- 2xx: its rules are obeyed, parsed and matched by Protego (RFC 9309 §2.2: the group of our
  product token, else `*`; longest match wins, `*` and `$` wildcards); the first 512 KiB are
  read (§2.5 asks for at least 500 KiB);
- 4xx ("unavailable", §2.3.1.3): everything is allowed. 429 is not "unavailable" but "too many
  requests": after its retries it counts as unreachable, as Google's crawler treats it;
- 5xx, 429, timeouts, connection errors (§2.3.1.4 "unreachable") and too many redirects:
  nothing of that origin is fetched in this run; one note says why and that a rerun tries
  again; the URLs are recorded as skipped, reason `robots_unreachable`. RFC 9309 §2.3.1.2 lets
  a crawler treat more than five redirects as "unavailable" (allow); we are stricter and
  disallow.

robots.txt itself is fetched with the safe downloader (`imgclf.net.fetch.fetch_bytes`), under
the same per-URL budget and politeness delay as every other request; a `Crawl-delay` longer
than the scrape's `delay` raises that host's delay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protego import Protego

from imgclf.config import ScrapeConfig
from imgclf.net.directives import product_token
from imgclf.net.errors import DownloadError
from imgclf.net.fetch import fetch_bytes
from imgclf.net.throttle import HostThrottle
from imgclf.net.urls import origin_of

#: Largest robots.txt read, in bytes (Google reads 500 KiB, RFC 9309 §2.5 asks for at least 500 KiB).
ROBOTS_MAX_BYTES = 512 * 1024


@dataclass
class RobotsVerdict:
    """Whether robots.txt lets us fetch a URL.

    Attributes:
        allowed: bool.
        reason: str. `""` when allowed; `"robots"` (disallowed by the rules) or
            `"robots_unreachable"` (robots.txt could not be fetched: the whole origin is
            disallowed for this run).
        detail: str. Human-readable why.
    """

    allowed: bool
    reason: str = ""
    detail: str = ""


@dataclass
class _OriginRobots:
    parser: Any = None  # protego.Protego for a 2xx robots.txt
    allow_all: bool = False
    unreachable: str = ""  # why robots.txt could not be fetched ("" if it could)


class Robots:
    """robots.txt per origin, fetched once per run with the safe downloader (RFC 9309).

    See the module docstring for the rules. Status handling is ours (RFC 9309 §2.3.1);
    parsing and matching are Protego's (§2.2).

    Args:
        session: `requests.Session`. Used for the robots.txt requests.
        cfg: ScrapeConfig. Timeouts, `retries` (at most 2 are used for robots.txt),
            `backoff`, `url_budget` and `user_agent` (its product token selects the group).
        throttle: HostThrottle or None. Spaces requests per host; robots.txt `Crawl-delay`
            raises a host's delay.
        note: callable(str) or None. Called once per origin whose robots.txt is unreachable.
    """

    def __init__(
        self, session: Any, cfg: ScrapeConfig, throttle: HostThrottle | None, note: Callable[[str], None] | None = None
    ):
        self.session, self.cfg, self.throttle = session, cfg, throttle
        self.token = product_token(cfg.user_agent)
        self.note = note
        self._cache: dict[str, _OriginRobots] = {}

    def _load(self, url: str) -> _OriginRobots:
        """The rules of `url`'s origin, fetched on first use and kept for the run."""
        origin = origin_of(url)
        rules = self._cache.get(origin)
        if rules is None:
            rules = self._fetch(origin)
            if rules.parser is not None and self.throttle is not None:
                delay = rules.parser.crawl_delay(self.token)
                if delay:
                    self.throttle.set_delay(url, float(delay))
            self._cache[origin] = rules
        return rules

    def _fetch(self, origin: str) -> _OriginRobots:
        """Fetches and parses `<origin>/robots.txt`; its status decides (RFC 9309 §2.3.1)."""
        try:
            raw = fetch_bytes(
                origin + "/robots.txt",
                max_bytes=ROBOTS_MAX_BYTES,
                keep_prefix=True,
                connect_timeout=self.cfg.connect_timeout,
                read_timeout=self.cfg.read_timeout,
                retries=min(self.cfg.retries, 2),
                backoff=self.cfg.backoff,
                total_timeout=self.cfg.url_budget,
                session=self.session,
                throttle=self.throttle,
            )
        except DownloadError as exc:
            status = int(exc.reason[5:]) if exc.reason[5:].isdigit() and exc.reason.startswith("http_") else 0
            if 400 <= status < 500 and status != 429:
                return _OriginRobots(allow_all=True)  # "unavailable": RFC 9309 §2.3.1.3
            why = f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason
            if self.note is not None:
                self.note(
                    f"robots.txt of {origin} could not be fetched ({why}); RFC 9309 §2.3.1.4 says to assume "
                    f"complete disallow, so nothing from {origin} is fetched in this run (recorded as "
                    f"robots_unreachable). Run the same command again when the site answers."
                )
            return _OriginRobots(unreachable=why)
        return _OriginRobots(parser=Protego.parse(raw.data.decode("utf-8", errors="replace")))

    def check(self, url: str) -> RobotsVerdict:
        """Whether robots.txt of `url`'s origin lets our product token fetch `url`.

        Args:
            url: str. An http(s) URL.

        Returns:
            RobotsVerdict.
        """
        rules = self._load(url)
        if rules.unreachable:
            return RobotsVerdict(
                False,
                "robots_unreachable",
                f"robots.txt of {origin_of(url)} could not be fetched ({rules.unreachable}); "
                "RFC 9309 §2.3.1.4: complete disallow",
            )
        if rules.allow_all or rules.parser is None or rules.parser.can_fetch(url, self.token):
            return RobotsVerdict(True)
        return RobotsVerdict(False, "robots", "disallowed by robots.txt")

    def allowed(self, url: str) -> bool:
        """True if robots.txt lets our User-Agent fetch `url` (see `check`)."""
        return self.check(url).allowed
