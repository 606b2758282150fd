"""`imgclf scrape web`: images from web pages (and image URLs) into `<out>/<label>/`.

What a page offers (images from `<img>`, `srcset`, lazy-loading attributes, links to images,
`og:image`; links; robots `<meta>`) is read by `imgclf.scrape.pages`. Links are followed
breadth-first up to `depth` levels, on the same site only (same host, ignoring a leading
`www.`, and same port). Requests to one host are spaced by `ScrapeConfig.delay` seconds, or the
site's `Crawl-delay` if longer.

robots.txt (RFC 9309) is fetched once per origin and run, through the safe downloader, and
obeyed for every URL fetched, pages and images alike (`imgclf.scrape.robots.Robots`): URLs it
disallows are recorded as skipped `robots`, and every URL of an origin whose robots.txt is
unreachable as skipped `robots_unreachable`.

The "noai" convention (honoured by img2dataset) is obeyed unless `ScrapeConfig.respect_noai`
is off: an image whose response has `X-Robots-Tag: noai` or `noimageai` is not stored, and a
page whose `X-Robots-Tag` or `<meta name="robots">` (or `<meta name="imgclf">`, our product
token) says `noai` / `noimageai` gives no images; its links are still followed. Both are
recorded as skipped, reason `noai`.

A URL given on the command line or in `--urls-file` may be a page or an image: its content decides.

The crawl (`_Crawl`) runs in the caller's thread: it plans the pages, fetches each page, and
hands every image URL to the `Runner`, whose pool runs the per-URL map
(`imgclf.scrape.download.download_task`) and stores the outcomes. With a Ray executor
(`--engine ray`), the image URLs are partitioned by host and each host's list is one task on
one worker (`imgclf.scrape.download.download_host`), its requests spaced by the host's delay;
robots.txt is still fetched and obeyed by the crawl, before a URL is handed on.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

from imgclf.config import ScrapeConfig, WebSource
from imgclf.engine import Executor
from imgclf.errors import ImageError, ScrapeError
from imgclf.images import sniff_format
from imgclf.net.directives import NOAI_DIRECTIVES
from imgclf.net.errors import DownloadError
from imgclf.net.fetch import RawResponse, fetch_bytes
from imgclf.net.image import check_image, looks_like_html
from imgclf.net.session import new_session
from imgclf.net.urls import clean_url
from imgclf.scrape.download import Task, UrlOutcome
from imgclf.scrape.pages import PageContent, is_image_url, parse_page, site_of
from imgclf.scrape.robots import Robots
from imgclf.scrape.runner import Runner, ScrapeSummary, check_label
from imgclf.ui import summary as print_summary

#: A page to visit: (url, depth, the page it was found on, its site).
PageItem = tuple[str, int, str, tuple[str, int | None]]

_NOAI_NOTE = "(the site asks that it not be used for AI training)"


def read_urls_file(path: Path) -> list[str]:
    """Reads one URL per line (blank lines and lines starting with `#` ignored).

    Args:
        path: Path. A text file (UTF-8).

    Returns:
        list of str: the URLs, stripped, in file order.

    Raises:
        ScrapeError: if the file cannot be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScrapeError(
            f"cannot read --urls-file {path}: {getattr(exc, 'strerror', None) or exc}",
            "give a text file with one URL per line",
        ) from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def seed_urls(source: WebSource) -> list[str]:
    """The URLs a web scrape starts from: `source.urls`, then those of `source.urls_file`.

    Args:
        source: WebSource.

    Returns:
        list of str: the seeds, without fragments.

    Raises:
        ScrapeError: no URL given, or `urls_file` unreadable.
    """
    seeds = list(source.urls)
    if source.urls_file is not None:
        seeds += read_urls_file(source.urls_file)
    if not seeds:
        raise ScrapeError("no URL given", "give page or image URLs, or --urls-file FILE")
    return [urldefrag(s.strip())[0] for s in seeds]


def _charset(content_type: str) -> str:
    m = re.search(r"charset=([\w.-]+)", content_type or "", re.I)
    return m.group(1) if m else "utf-8"


def _noai_reasons(raw: RawResponse, content: PageContent | None, respect_noai: bool) -> list[str]:
    """Why a response asks for no AI use: its `X-Robots-Tag` and (for a page) its robots `<meta>`."""
    if not respect_noai:
        return []
    tags = sorted(raw.robots_tags & NOAI_DIRECTIVES)
    meta = sorted(content.directives & NOAI_DIRECTIVES) if content is not None else []
    return ([f"X-Robots-Tag: {', '.join(tags)}"] if tags else []) + (
        [f"<meta name=robots> {', '.join(meta)}"] if meta else []
    )


@dataclass
class _Crawl:
    """One `scrape_web` run: the page queue, the pages seen, the image URLs attempted.

    `limit` counts image URLs attempted, those settled by an earlier run included, so a rerun
    does not go further; `max_pages` counts pages fetched.
    """

    source: WebSource
    label: str
    runner: Runner
    robots: Robots
    fetch: Callable[[str], RawResponse]
    respect_noai: bool
    queue: deque[PageItem] = field(default_factory=deque)
    seen_pages: set[str] = field(default_factory=set)
    attempted: int = 0
    pages: int = 0

    def limit_reached(self) -> bool:
        return self.source.limit is not None and self.attempted >= self.source.limit

    def run(self, seeds: list[str]) -> None:
        """Visits the seeds and the pages they lead to, breadth-first, until done or a limit."""
        self.queue.extend((url, 0, url, site_of(url)) for url in seeds)
        while self.queue and not self.limit_reached():
            if not self.visit(*self.queue.popleft()):
                break

    # ------------------------------------------------------------------ images
    def _attempt(self, url: str) -> bool:
        """Marks an image URL handled in this run; True (and counted) the first time."""
        if self.runner.mark_seen(url, self.label):
            self.attempted += 1
            return True
        return False

    def add_image(self, url: str, found_on: str, noai_page: str = "") -> None:
        """Hands one image URL to the runner, or records why it is not fetched."""
        if self.limit_reached():
            return
        task = Task(url=url, label=self.label, source=found_on)
        if self.runner.is_done(url, self.label):
            if self.runner.submit(task) != "repeat":  # counted as already_done
                self.attempted += 1
            return
        if urlsplit(url).scheme not in ("http", "https"):
            if self._attempt(url):
                self.runner.fail(task, "unsupported_scheme", "only http and https URLs are fetched")
            return
        if noai_page:
            if self._attempt(url):
                self.runner.skip(task, "noai", noai_page)
            return
        verdict = self.robots.check(url)
        if verdict.allowed:
            if self.runner.submit(task) != "repeat":
                self.attempted += 1
        elif self._attempt(url):
            self.runner.skip(task, verdict.reason, verdict.detail)

    def _seed_image(self, url: str, found_on: str, raw: RawResponse) -> None:
        """A URL fetched as a page that turned out to be an image: checked and stored here."""
        if not self._attempt(url):
            return
        task = Task(url=url, label=self.label, source=found_on)
        noai = _noai_reasons(raw, None, self.respect_noai)
        if noai:
            self.runner.skip(task, "noai", f"{noai[0]} {_NOAI_NOTE}")
            return
        try:
            outcome = UrlOutcome(task, image=check_image(raw))
        except ImageError as exc:
            outcome = UrlOutcome.of(task, exc)
        self.runner.store(outcome)

    def _settled_image(self, url: str) -> bool:
        row = self.runner.manifest.get(clean_url(url), self.label)
        return row is not None and row["kind"] == "image" and self.runner.is_done(url, self.label)

    # ------------------------------------------------------------------ pages
    def visit(self, url: str, depth: int, found_on: str, site: tuple[str, int | None]) -> bool:
        """Handles one queued URL (a page, or a seed that is an image); False stops the crawl."""
        if url in self.seen_pages:
            return True
        self.seen_pages.add(url)
        page_task = Task(url=url, label=self.label, source=found_on, kind="page")
        if urlsplit(url).scheme not in ("http", "https"):
            self.runner.fail(
                Task(url=clean_url(url), label=self.label, source=found_on, kind="page"),
                "unsupported_scheme",
                "only http and https URLs are fetched",
            )
            return True
        if depth == 0 and (is_image_url(url) or self._settled_image(url)):  # a seed that is (or was) an image
            self.add_image(url, found_on)
            return True
        if self.pages >= self.source.max_pages:
            self.runner.note(f"stopped following links after {self.pages} pages (max_pages)")
            return False
        verdict = self.robots.check(url)
        if not verdict.allowed:
            self.runner.skip(page_task, verdict.reason, verdict.detail)
            return True
        self.pages += 1
        try:
            raw = self.fetch(url)
        except DownloadError as exc:
            self.runner.fail(page_task, f"page_{exc.reason}", exc.detail)
            return True
        if sniff_format(raw.data[:16]) is not None:  # the URL was an image
            self._seed_image(url, found_on, raw)
            return True
        if "html" not in raw.content_type.lower() and not looks_like_html(raw.data):
            self.runner.fail(page_task, "page_not_html", f"Content-Type {raw.content_type or 'none'!r}")
            return True
        self._take_page(page_task, depth, site, raw)
        self.runner.poll()
        return True

    def _take_page(self, page: Task, depth: int, site: tuple[str, int | None], raw: RawResponse) -> None:
        """Records an HTML page, hands its images on and queues its same-site links."""
        text = raw.data.decode(_charset(raw.content_type), errors="replace")
        content = parse_page(text, raw.final_url, self.robots.token)
        why = _noai_reasons(raw, content, self.respect_noai)
        url = clean_url(page.url)
        noai_page = f"the page {url} says {' and '.join(why)} (no use for AI training)" if why else ""
        row: dict[str, Any] = dict(
            url=url, label=self.label, kind="page", source=page.source, final_url=raw.final_url, bytes=len(raw.data)
        )
        if noai_page:
            detail = f"{noai_page}; {len(content.images)} images not taken, links followed"
            self.runner.manifest.record_url(**row, status="skipped", reason="noai", detail=detail)
        else:
            self.runner.manifest.record_url(**row, status="crawled", reason="")
        for img in content.images:
            self.add_image(img, url, noai_page)
        if depth < self.source.depth:
            for link in content.links:
                if site_of(link) == site and link not in self.seen_pages:
                    self.queue.append((link, depth + 1, url, site))


def scrape_web(source: WebSource, out: Path, cfg: ScrapeConfig, *, executor: Executor | None = None) -> ScrapeSummary:
    """Downloads the images of web pages (and image URLs) into `out/<label>/`, recording each attempt.

    Args:
        source: WebSource. `urls` and/or `urls_file` (pages or images), `label`, `depth` (link
            levels followed on the same site, 0 = the given pages only), `limit` (image URLs
            attempted at most, those done by an earlier run included, so a rerun does not go
            further), `max_pages`.
        out: Path. Output folder; images land in `out/<label>/<sha256[:16]><ext>`, the manifest
            in `out/_manifest.sqlite`.
        cfg: ScrapeConfig. Downloader settings; `delay` is the per-host politeness delay in
            seconds, `url_budget` the time budget of one URL (page, image or robots.txt) in
            seconds, `respect_noai` whether the noai convention is honoured.
        executor: Executor or None, default None. A Ray executor downloads the image URLs by
            host on the cluster's workers; None = this machine's thread pool.

    Returns:
        ScrapeSummary: kept, skipped and failed counts by reason. Pages that could not be fetched
        are counted as failed with a `page_` reason (`page_http_404`...); URLs kept out by
        robots.txt as skipped `robots` or `robots_unreachable`, by the noai convention as `noai`.

    Raises:
        ScrapeError: no URL given, unreadable `urls_file`, bad label, or another scrape writing to `out`.
    """
    label = check_label(source.label)
    seeds = seed_urls(source)
    runner = Runner(Path(out), cfg, "scrape web", total=None, throttle=True, executor=executor)
    session = new_session(cfg.user_agent)
    robots = Robots(session, cfg, runner.throttle, note=runner.note)
    fetch = functools.partial(
        fetch_bytes,
        max_bytes=cfg.max_bytes,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        retries=cfg.retries,
        backoff=cfg.backoff,
        total_timeout=cfg.url_budget,
        session=session,
        throttle=runner.throttle,
        robots_token=robots.token,
    )
    try:
        _Crawl(source, label, runner, robots, fetch, cfg.respect_noai).run(seeds)
        summary = runner.close()
    except BaseException:  # Ctrl-C or a bug: stop the pool without waiting, then let it through
        runner.abort()
        raise
    finally:
        session.close()
    print_summary(summary.line("scrape web"))
    return summary
