"""The scrapers' per-URL map: one image URL in, one small typed outcome out.

`download_task(task, cfg)` fetches and verifies one image with the safe downloader
(`imgclf.net.image.fetch_image`) under the scrape settings, and never raises for the URL:
every failure becomes an outcome with a reason, so one bad URL never stops a run. It depends
only on its arguments (the task, the `ScrapeConfig`, and optionally a pooled session and the
per-host politeness throttle), writes nothing and prints nothing, so a pool of threads runs it
today (`imgclf.scrape.runner.Runner`) and a cluster can run it over URLs partitioned by host.

Storing the image and recording it in the manifest is the driver's job (`Runner`), one writer.

On a cluster (`--engine ray`) the URLs are partitioned by host: `download_host` is the map over
one host's URLs (a `HostJob`), in order, spaced by that host's delay, so every request to a
host comes from one worker and the politeness delay holds cluster-wide.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from imgclf.config import ScrapeConfig
from imgclf.errors import ImageError
from imgclf.net.directives import product_token
from imgclf.net.image import DownloadResult, fetch_image
from imgclf.net.session import new_session
from imgclf.net.throttle import HostThrottle


@dataclass(frozen=True)
class Task:
    """One URL to download or record.

    Attributes:
        url: str. The URL.
        label: str. Class folder.
        source: str. `r/<subreddit>` or the page the URL was found on.
        kind: str, default `"image"`. `"image"` or `"page"`.

    Which posts pointed at the URL is recorded separately (`Manifest.record_post`).
    """

    url: str
    label: str
    source: str
    kind: str = "image"


@dataclass(frozen=True)
class UrlOutcome:
    """What one URL gave: a verified image, or why not.

    Attributes:
        task: Task. The URL and where it came from.
        image: DownloadResult or None. The verified image (bytes, sha256, size, extension).
        reason: str, default "". Why there is no image: a downloader or content reason
            (`"timeout"`, `"http_404"`, `"html"`, `"truncated"`, `"noai"`, `"error"`, ...).
        detail: str, default "". Human-readable why (URL credentials removed).
    """

    task: Task
    image: DownloadResult | None = None
    reason: str = ""
    detail: str = ""

    @classmethod
    def of(cls, task: Task, result: DownloadResult | ImageError) -> UrlOutcome:
        """The outcome of `task` from a result or an `ImageError` (e.g. of `check_image`)."""
        if isinstance(result, ImageError):
            return cls(task, reason=result.reason, detail=result.detail)
        return cls(task, image=result)


def download_task(
    task: Task, cfg: ScrapeConfig, *, session: Any = None, throttle: HostThrottle | None = None
) -> UrlOutcome:
    """Downloads and verifies one image URL under the scrape settings (the scrapers' map).

    Args:
        task: Task. The URL (`kind` `"image"`).
        cfg: ScrapeConfig. `max_bytes` (bytes), `connect_timeout`, `read_timeout`, `url_budget`
            (seconds), `retries`, `backoff` (seconds), `respect_noai`, `user_agent`.
        session: `requests.Session` or None, default None. A pooled session of this worker;
            None makes one with `cfg.user_agent` for this call.
        throttle: HostThrottle or None, default None. The per-host politeness delay shared by
            the workers that fetch from the same hosts; None sends at once.

    Returns:
        UrlOutcome: the image, or the reason it is not one. Any unexpected exception of the
        downloader is an outcome too (reason `"error"`, with its type), recorded like any other.
    """
    own = session is None
    if own:
        session = new_session(cfg.user_agent, pool=1)
    try:
        image = fetch_image(
            task.url,
            max_bytes=cfg.max_bytes,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            retries=cfg.retries,
            backoff=cfg.backoff,
            total_timeout=cfg.url_budget,
            session=session,
            throttle=throttle,
            respect_noai=cfg.respect_noai,
            robots_token=product_token(cfg.user_agent),
        )
        return UrlOutcome(task, image=image)
    except ImageError as exc:
        return UrlOutcome.of(task, exc)
    except Exception as exc:  # noqa: BLE001 - one bad URL never kills the run; recorded with its type
        return UrlOutcome(task, reason="error", detail=f"{type(exc).__name__}: {exc}")
    finally:
        if own:
            session.close()


@dataclass(frozen=True)
class HostJob:
    """Every URL of one host in a scrape on a cluster (an item of the per-host map).

    Attributes:
        host: str. The host key (`imgclf.net.urls.host_key`).
        tasks: tuple of Task. Its URLs, in the order they were found.
        delay: float. Seconds between two requests to it (`ScrapeConfig.delay`, or its
            robots.txt `Crawl-delay` if longer).
        wait_first: float. Seconds to wait before the first request (the driver has just
            fetched its robots.txt or a page of it).
    """

    host: str
    tasks: tuple[Task, ...]
    delay: float
    wait_first: float = 0.0


def download_host(job: HostJob, cfg: ScrapeConfig) -> list[UrlOutcome]:
    """Downloads one host's URLs in order, `job.delay` seconds apart (the map of a cluster scrape).

    Args:
        job: HostJob.
        cfg: ScrapeConfig. As `download_task`'s.

    Returns:
        list of UrlOutcome, one per task, in order.
    """
    throttle = HostThrottle(job.delay)
    session = new_session(cfg.user_agent, pool=1)
    try:
        if job.wait_first > 0:
            time.sleep(job.wait_first)
        return [download_task(t, cfg, session=session, throttle=throttle) for t in job.tasks]
    finally:
        session.close()
