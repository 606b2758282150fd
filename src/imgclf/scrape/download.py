"""The scrapers' per-URL map: one image URL in, one small typed outcome out.

`download_task(task, cfg)` fetches and verifies one image with the safe downloader
(`imgclf.net.image.fetch_image`) under the scrape settings, and never raises for the URL:
every failure becomes an outcome with a reason, so one bad URL never stops a run. It depends
only on its arguments (the task, the `ScrapeConfig`, and optionally a pooled session and the
per-host politeness throttle), writes nothing and prints nothing, so a pool of threads runs it
today (`imgclf.scrape.runner.Runner`) and a cluster can run it over URLs partitioned by host.

Storing the image and recording it in the manifest is the driver's job (`Runner`), one writer.
"""

from __future__ import annotations

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
