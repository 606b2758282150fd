"""`imgclf scrape web`: images from web pages (and image URLs) into `<out>/<label>/`.

From each page (parsed with the standard library's `html.parser`, relative URLs resolved
against the page's final URL and `<base href>`), images are collected from:

- `<img src>`; when `srcset` is present, its largest candidate instead (largest `w`
  descriptor, else largest `x` density, per the HTML standard's srcset syntax);
- `<source srcset>` inside `<picture>`, and lazy-loading attributes `data-src`,
  `data-srcset`, `data-original`, `data-lazy-src` on any element;
- `<a href>` whose path ends in an image extension;
- `<meta property="og:image">` (and `og:image:url`, `og:image:secure_url`, `twitter:image`).

Links (`<a href>` to non-images) are followed breadth-first up to `depth` levels, on the same
site only (same host, ignoring a leading `www.`, and same port). robots.txt is obeyed for every
URL fetched (pages and images) with `urllib.robotparser` and our User-Agent: a 404 allows all,
401 / 403 / 5xx disallow all (RFC 9309 §2.3.1), a robots.txt that cannot be reached allows all
(the request itself then fails and is recorded). Requests to one host are spaced by
`ScrapeConfig.delay` seconds, or the site's `Crawl-delay` if longer.

A URL given on the command line or in `--urls-file` may be a page or an image: its content decides.
"""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from imgclf.config import ScrapeConfig, WebSource
from imgclf.errors import ImageError, ScrapeError
from imgclf.images import IMAGE_EXTENSIONS, sniff_format
from imgclf.scrape.download import (
    DownloadError,
    HostThrottle,
    _looks_like_html,
    check_image,
    clean_url,
    fetch_bytes,
    new_session,
    origin_of,
)
from imgclf.scrape.runner import Runner, ScrapeSummary, Task, check_label

#: Largest robots.txt read, in bytes (Google reads 500 KiB, RFC 9309 §2.5 asks for at least 500 KiB).
ROBOTS_MAX_BYTES = 512 * 1024

_META_IMAGE = frozenset({"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"})
_NOT_URLS = frozenset({"data", "javascript", "mailto", "about", "blob", "tel"})
_LAZY_ATTRS = ("data-src", "data-original", "data-lazy-src")
_SRCSET_ITEM = re.compile(r"\s*([^\s,][^\s]*?)(?:\s+([\d.]+)([wx]))?\s*(?:,|$)")


def largest_srcset(srcset: str) -> str | None:
    """Returns the largest candidate URL of a `srcset` attribute, or None if it has none.

    Args:
        srcset: str. E.g. `"a.jpg 320w, b.jpg 1280w"` or `"a.jpg, b.jpg 2x"`.

    Returns:
        str or None: the URL with the largest width descriptor (`w`); if there is none, the
        largest pixel density (`x`, a candidate without descriptor counting as `1x`).
    """
    best: tuple[int, float, str] | None = None
    for m in _SRCSET_ITEM.finditer(srcset):
        url, num, unit = m.group(1), m.group(2), m.group(3)
        if not url:
            continue
        url = url.rstrip(",")
        try:
            value = float(num) if num else 1.0
        except ValueError:
            continue
        key = (1 if unit == "w" else 0, value, url)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def is_image_url(url: str) -> bool:
    """True if `url`'s path ends in an image extension (a hint only: content decides)."""
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    return dot > path.rfind("/") and path[dot:] in IMAGE_EXTENSIONS


class _Collector(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base = base
        self._base_seen = False
        self.images: list[str] = []
        self.links: list[str] = []

    def _add(self, into: list[str], value: str | None) -> None:
        if not value:
            return
        url, _ = urldefrag(urljoin(self.base, value.strip()))
        scheme = urlsplit(url).scheme
        # Images with another scheme (ftp:...) are kept to be counted as unsupported_scheme;
        # inline / script pseudo-URLs are not downloads at all.
        wanted = scheme in ("http", "https") or (into is self.images and scheme and scheme not in _NOT_URLS)
        if wanted and url not in into:
            into.append(url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v for k, v in attrs if v is not None}
        if tag == "base" and a.get("href") and not self._base_seen:
            self.base = urljoin(self.base, a["href"])
            self._base_seen = True
        if tag in ("img", "source"):
            srcset = a.get("srcset") or a.get("data-srcset")
            if srcset:
                self._add(self.images, largest_srcset(srcset))
            elif tag == "img":
                self._add(self.images, a.get("src"))
        elif a.get("data-srcset"):
            self._add(self.images, largest_srcset(a["data-srcset"]))
        for attr in _LAZY_ATTRS:
            if attr in a:
                self._add(self.images, a[attr])
        if tag == "a" and a.get("href"):
            href = urljoin(self.base, a["href"])
            self._add(self.images if is_image_url(href) else self.links, href)
        if tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            if key in _META_IMAGE:
                self._add(self.images, a.get("content"))


def extract(html_text: str, base_url: str) -> tuple[list[str], list[str]]:
    """Finds the image URLs and the links of an HTML page.

    Args:
        html_text: str. The page.
        base_url: str. The page's final URL (after redirects), for relative URLs.

    Returns:
        tuple `(images, links)`: absolute http(s) URLs without fragments, in page order,
        without repeats. See the module docstring for what counts as an image.
    """
    c = _Collector(base_url)
    try:
        c.feed(html_text)
        c.close()
    except Exception:  # html.parser is lenient; whatever was collected before an oddity is kept
        pass
    return c.images, c.links


def site_of(url: str) -> tuple[str, int | None]:
    """Returns `(host without leading 'www.', port or the scheme's default)` used for "same site"."""
    p = urlsplit(url)
    host = (p.hostname or "").lower().removeprefix("www.")
    try:
        port = p.port or {"http": 80, "https": 443}.get(p.scheme)
    except ValueError:
        port = None
    return host, port


class Robots:
    """robots.txt per origin (`urllib.robotparser`), fetched once with the safe downloader."""

    def __init__(self, session: Any, cfg: ScrapeConfig, throttle: HostThrottle | None):
        self.session, self.cfg, self.throttle = session, cfg, throttle
        self.user_agent = cfg.user_agent
        self._cache: dict[str, RobotFileParser] = {}

    def parser(self, url: str) -> RobotFileParser:
        origin = origin_of(url)
        rp = self._cache.get(origin)
        if rp is not None:
            return rp
        rp = RobotFileParser(origin + "/robots.txt")
        try:
            raw = fetch_bytes(origin + "/robots.txt", max_bytes=ROBOTS_MAX_BYTES, connect_timeout=self.cfg.connect_timeout,
                              read_timeout=self.cfg.read_timeout, retries=min(self.cfg.retries, 2),
                              backoff=self.cfg.backoff, session=self.session, throttle=self.throttle)
            rp.parse(raw.data.decode("utf-8", errors="replace").splitlines())
        except DownloadError as exc:
            if exc.reason in ("http_401", "http_403") or exc.reason.startswith("http_5"):
                rp.disallow_all = True
            else:  # 404 and other 4xx, unreachable: allow (RFC 9309 §2.3.1.3)
                rp.allow_all = True
        if self.throttle is not None:
            delay = rp.crawl_delay(self.user_agent)
            if delay:
                self.throttle.set_delay(url, float(delay))
        self._cache[origin] = rp
        return rp

    def allowed(self, url: str) -> bool:
        """True if robots.txt lets our User-Agent fetch `url`."""
        return self.parser(url).can_fetch(self.user_agent, url)


def read_urls_file(path: Path) -> list[str]:
    """Reads one URL per line (blank lines and lines starting with `#` ignored).

    Raises:
        ScrapeError: if the file cannot be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScrapeError(f"cannot read --urls-file {path}: {getattr(exc, 'strerror', None) or exc}",
                          "give a text file with one URL per line") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _charset(content_type: str) -> str:
    m = re.search(r"charset=([\w.-]+)", content_type or "", re.I)
    return m.group(1) if m else "utf-8"


def scrape_web(source: WebSource, out: Path, cfg: ScrapeConfig) -> ScrapeSummary:
    """Downloads the images of web pages (and image URLs) into `out/<label>/`, recording each attempt.

    Args:
        source: WebSource. `urls` and/or `urls_file` (pages or images), `label`, `depth` (link
            levels followed on the same site, 0 = the given pages only), `limit` (image URLs
            attempted at most, those done by an earlier run included, so a rerun does not go
            further), `max_pages`.
        out: Path. Output folder; images land in `out/<label>/<sha256[:16]><ext>`, the manifest
            in `out/_manifest.sqlite`.
        cfg: ScrapeConfig. Downloader settings; `delay` is the per-host politeness delay in seconds.

    Returns:
        ScrapeSummary: kept, skipped and failed counts by reason. Pages that could not be fetched
        are counted as failed with a `page_` reason (`page_http_404`...).

    Raises:
        ScrapeError: no URL given, unreadable `urls_file`, bad label, or another scrape writing to `out`.
    """
    label = check_label(source.label)
    seeds = list(source.urls)
    if source.urls_file is not None:
        seeds += read_urls_file(source.urls_file)
    if not seeds:
        raise ScrapeError("no URL given", "give page or image URLs, or --urls-file FILE")
    runner = Runner(Path(out), cfg, "scrape web", total=None, throttle=True)
    session = new_session(cfg.user_agent)
    robots = Robots(session, cfg, runner.throttle)
    fetch_kw = dict(max_bytes=cfg.max_bytes, connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout,
                    retries=cfg.retries, backoff=cfg.backoff, session=session, throttle=runner.throttle)
    queue: deque[tuple[str, int, str, tuple[str, int | None]]] = deque()
    for s in seeds:
        url = urldefrag(s.strip())[0]
        queue.append((url, 0, url, site_of(url)))
    seen_pages: set[str] = set()
    attempted = 0
    pages = 0

    def limit_reached() -> bool:
        return source.limit is not None and attempted >= source.limit

    def add_image(url: str, found_on: str) -> None:
        nonlocal attempted
        if limit_reached():
            return
        task = Task(url=url, label=label, source=found_on)
        if runner.is_done(url, label):
            if runner.submit(task) != "repeat":  # counted as already_done
                attempted += 1
        elif urlsplit(url).scheme not in ("http", "https"):
            if runner.mark_seen(url, label):
                attempted += 1
                runner.fail(task, "unsupported_scheme", "only http and https URLs are fetched")
        elif robots.allowed(url):
            if runner.submit(task) != "repeat":
                attempted += 1
        elif runner.mark_seen(url, label):
            attempted += 1
            runner.skip(task, "robots", "disallowed by robots.txt")

    try:
        while queue and not limit_reached():
            url, depth, found_on, site = queue.popleft()
            if url in seen_pages:
                continue
            seen_pages.add(url)
            if urlsplit(url).scheme not in ("http", "https"):
                runner.fail(Task(url=clean_url(url), label=label, source=found_on, kind="page"), "unsupported_scheme",
                            "only http and https URLs are fetched")
                continue
            if depth == 0 and is_image_url(url):
                add_image(url, found_on)
                continue
            if depth == 0 and runner.is_done(url, label):  # a seed that turned out to be an image earlier
                add_image(url, found_on)
                continue
            if pages >= source.max_pages:
                runner.note(f"stopped following links after {pages} pages (max_pages)")
                break
            page_task = Task(url=url, label=label, source=found_on, kind="page")
            if not robots.allowed(url):
                runner.skip(page_task, "robots", "disallowed by robots.txt")
                continue
            pages += 1
            try:
                raw = fetch_bytes(url, **fetch_kw)
            except DownloadError as exc:
                runner.fail(page_task, f"page_{exc.reason}", exc.detail)
                continue
            if sniff_format(raw.data[:16]) is not None:  # the URL was an image
                if runner.mark_seen(url, label):
                    attempted += 1
                    try:
                        res: Any = check_image(raw)
                    except ImageError as exc:
                        res = exc
                    runner.store(Task(url=url, label=label, source=found_on), res)
                continue
            if "html" not in raw.content_type.lower() and not _looks_like_html(raw.data):
                runner.fail(page_task, "page_not_html", f"Content-Type {raw.content_type or 'none'!r}")
                continue
            runner.manifest.record(url=clean_url(url), label=label, kind="page", source=found_on,
                                   final_url=raw.final_url, status="crawled", reason="", bytes=len(raw.data))
            text = raw.data.decode(_charset(raw.content_type), errors="replace")
            images, links = extract(text, raw.final_url)
            for img in images:
                add_image(img, clean_url(url))
            if depth < source.depth:
                for link in links:
                    if site_of(link) == site and link not in seen_pages:
                        queue.append((link, depth + 1, clean_url(url), site))
            runner.poll()
        summary = runner.close()
    except BaseException:
        runner.abort()
        raise
    finally:
        session.close()
    from imgclf.ui import summary as print_summary

    print_summary(summary.line("scrape web"))
    return summary
