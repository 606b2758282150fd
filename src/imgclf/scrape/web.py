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
site only (same host, ignoring a leading `www.`, and same port). Requests to one host are spaced
by `ScrapeConfig.delay` seconds, or the site's `Crawl-delay` if longer.

robots.txt (RFC 9309) is fetched once per origin and run, through the safe downloader, and
obeyed for every URL fetched, pages and images alike (`Robots`):

- 2xx: its rules are obeyed, parsed and matched by Protego (RFC 9309 §2.2: the group of our
  product token, else `*`; longest match wins, `*` and `$` wildcards); the first 512 KiB are
  read (§2.5 asks for at least 500 KiB);
- 4xx ("unavailable", §2.3.1.3): everything is allowed. 429 is not "unavailable" but "too many
  requests": after its retries it counts as unreachable, as Google's crawler treats it;
- 5xx, 429, timeouts, connection errors (§2.3.1.4 "unreachable") and too many redirects:
  nothing of that origin is fetched in this run; one warning line says why and that a rerun
  tries again; the URLs are recorded as skipped, reason `robots_unreachable`. RFC 9309
  §2.3.1.2 lets a crawler treat more than five redirects as "unavailable" (allow); we are
  stricter and disallow.

The "noai" convention (honoured by img2dataset) is obeyed unless `ScrapeConfig.respect_noai`
is off: an image whose response has `X-Robots-Tag: noai` or `noimageai` is not stored, and a
page whose `X-Robots-Tag` or `<meta name="robots">` (or `<meta name="imgclf">`, our product
token) says `noai` / `noimageai` gives no images; its links are still followed. Both are
recorded as skipped, reason `noai`.

A URL given on the command line or in `--urls-file` may be a page or an image: its content decides.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from imgclf.config import ScrapeConfig, WebSource
from imgclf.errors import ImageError, ScrapeError
from imgclf.images import IMAGE_EXTENSIONS, sniff_format
from imgclf.scrape.download import (
    NOAI_DIRECTIVES,
    DownloadError,
    HostThrottle,
    _looks_like_html,
    check_image,
    clean_url,
    fetch_bytes,
    new_session,
    origin_of,
    product_token,
    robots_directives,
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
    def __init__(self, base: str, token: str = "*"):
        super().__init__(convert_charrefs=True)
        self.base = base
        self.token = token.lower()
        self._base_seen = False
        self.images: list[str] = []
        self.links: list[str] = []
        self.directives: set[str] = set()

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
            if a.get("name", "").lower() in ("robots", self.token) and a.get("content"):
                self.directives |= robots_directives([a["content"]])


@dataclass
class PageContent:
    """What `parse_page` finds in an HTML page.

    Attributes:
        images: list of str. Image URLs (absolute, no fragment, page order, no repeats).
        links: list of str. Other links, likewise.
        directives: set of str. Robots directives of `<meta name="robots">` and
            `<meta name="<our product token>">`, lower case (e.g. `{"noai", "nofollow"}`).
    """

    images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    directives: set[str] = field(default_factory=set)


def parse_page(html_text: str, base_url: str, token: str = "*") -> PageContent:
    """Finds the image URLs, the links and the robots meta directives of an HTML page.

    Args:
        html_text: str. The page.
        base_url: str. The page's final URL (after redirects), for relative URLs.
        token: str, default "*". Our product token (`<meta name="TOKEN">` applies to us).

    Returns:
        PageContent. See the module docstring for what counts as an image.
    """
    c = _Collector(base_url, token)
    try:
        c.feed(html_text)
        c.close()
    except Exception:  # html.parser is lenient; whatever was collected before an oddity is kept
        pass
    return PageContent(c.images, c.links, c.directives)


def extract(html_text: str, base_url: str) -> tuple[list[str], list[str]]:
    """Finds the image URLs and the links of an HTML page.

    Args:
        html_text: str. The page.
        base_url: str. The page's final URL (after redirects), for relative URLs.

    Returns:
        tuple `(images, links)`: absolute http(s) URLs without fragments, in page order,
        without repeats. See the module docstring for what counts as an image.
    """
    page = parse_page(html_text, base_url)
    return page.images, page.links


def site_of(url: str) -> tuple[str, int | None]:
    """Returns `(host without leading 'www.', port or the scheme's default)` used for "same site"."""
    p = urlsplit(url)
    host = (p.hostname or "").lower().removeprefix("www.")
    try:
        port = p.port or {"http": 80, "https": 443}.get(p.scheme)
    except ValueError:
        port = None
    return host, port


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
        from protego import Protego

        origin = origin_of(url)
        rules = self._cache.get(origin)
        if rules is not None:
            return rules
        robots_url = origin + "/robots.txt"
        try:
            raw = fetch_bytes(
                robots_url,
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
                rules = _OriginRobots(allow_all=True)  # "unavailable": RFC 9309 §2.3.1.3
            else:
                why = f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason
                rules = _OriginRobots(unreachable=why)
                if self.note is not None:
                    self.note(
                        f"robots.txt of {origin} could not be fetched ({why}); RFC 9309 §2.3.1.4 says to assume "
                        f"complete disallow, so nothing from {origin} is fetched in this run (recorded as "
                        f"robots_unreachable). Run the same command again when the site answers."
                    )
        else:
            rules = _OriginRobots(parser=Protego.parse(raw.data.decode("utf-8", errors="replace")))
            if self.throttle is not None:
                delay = rules.parser.crawl_delay(self.token)
                if delay:
                    self.throttle.set_delay(url, float(delay))
        self._cache[origin] = rules
        return rules

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


def read_urls_file(path: Path) -> list[str]:
    """Reads one URL per line (blank lines and lines starting with `#` ignored).

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


def _charset(content_type: str) -> str:
    m = re.search(r"charset=([\w.-]+)", content_type or "", re.I)
    return m.group(1) if m else "utf-8"


def _settled_image(runner: Runner, url: str, label: str) -> bool:
    row = runner.manifest.get(clean_url(url), label)
    return row is not None and row["kind"] == "image" and runner.is_done(url, label)


def scrape_web(source: WebSource, out: Path, cfg: ScrapeConfig) -> ScrapeSummary:
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

    Returns:
        ScrapeSummary: kept, skipped and failed counts by reason. Pages that could not be fetched
        are counted as failed with a `page_` reason (`page_http_404`...); URLs kept out by
        robots.txt as skipped `robots` or `robots_unreachable`, by the noai convention as `noai`.

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
    robots = Robots(session, cfg, runner.throttle, note=runner.note)
    token = robots.token
    fetch_kw = dict(
        max_bytes=cfg.max_bytes,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        retries=cfg.retries,
        backoff=cfg.backoff,
        total_timeout=cfg.url_budget,
        session=session,
        throttle=runner.throttle,
        robots_token=token,
    )
    queue: deque[tuple[str, int, str, tuple[str, int | None]]] = deque()
    for s in seeds:
        url = urldefrag(s.strip())[0]
        queue.append((url, 0, url, site_of(url)))
    seen_pages: set[str] = set()
    attempted = 0
    pages = 0

    def limit_reached() -> bool:
        return source.limit is not None and attempted >= source.limit

    def add_image(url: str, found_on: str, noai_page: str = "") -> None:
        nonlocal attempted
        if limit_reached():
            return
        task = Task(url=url, label=label, source=found_on)
        if runner.is_done(url, label):
            if runner.submit(task) != "repeat":  # counted as already_done
                attempted += 1
            return
        if urlsplit(url).scheme not in ("http", "https"):
            if runner.mark_seen(url, label):
                attempted += 1
                runner.fail(task, "unsupported_scheme", "only http and https URLs are fetched")
            return
        if noai_page:
            if runner.mark_seen(url, label):
                attempted += 1
                runner.skip(task, "noai", noai_page)
            return
        verdict = robots.check(url)
        if verdict.allowed:
            if runner.submit(task) != "repeat":
                attempted += 1
        elif runner.mark_seen(url, label):
            attempted += 1
            runner.skip(task, verdict.reason, verdict.detail)

    try:
        while queue and not limit_reached():
            url, depth, found_on, site = queue.popleft()
            if url in seen_pages:
                continue
            seen_pages.add(url)
            if urlsplit(url).scheme not in ("http", "https"):
                runner.fail(
                    Task(url=clean_url(url), label=label, source=found_on, kind="page"),
                    "unsupported_scheme",
                    "only http and https URLs are fetched",
                )
                continue
            if depth == 0 and is_image_url(url):
                add_image(url, found_on)
                continue
            if depth == 0 and _settled_image(runner, url, label):  # a seed that turned out to be an image earlier
                add_image(url, found_on)
                continue
            if pages >= source.max_pages:
                runner.note(f"stopped following links after {pages} pages (max_pages)")
                break
            page_task = Task(url=url, label=label, source=found_on, kind="page")
            verdict = robots.check(url)
            if not verdict.allowed:
                runner.skip(page_task, verdict.reason, verdict.detail)
                continue
            pages += 1
            try:
                raw = fetch_bytes(url, **fetch_kw)
            except DownloadError as exc:
                runner.fail(page_task, f"page_{exc.reason}", exc.detail)
                continue
            noai = sorted(raw.robots_tags & NOAI_DIRECTIVES) if cfg.respect_noai else []
            if sniff_format(raw.data[:16]) is not None:  # the URL was an image
                if runner.mark_seen(url, label):
                    attempted += 1
                    img_task = Task(url=url, label=label, source=found_on)
                    if noai:
                        runner.skip(
                            img_task,
                            "noai",
                            f"X-Robots-Tag: {', '.join(noai)} (the site asks that it not be used for AI training)",
                        )
                        continue
                    try:
                        res: Any = check_image(raw)
                    except ImageError as exc:
                        res = exc
                    runner.store(img_task, res)
                continue
            if "html" not in raw.content_type.lower() and not _looks_like_html(raw.data):
                runner.fail(page_task, "page_not_html", f"Content-Type {raw.content_type or 'none'!r}")
                continue
            text = raw.data.decode(_charset(raw.content_type), errors="replace")
            content = parse_page(text, raw.final_url, token)
            if cfg.respect_noai:
                meta = sorted(content.directives & NOAI_DIRECTIVES)
                why = ([f"X-Robots-Tag: {', '.join(noai)}"] if noai else []) + (
                    [f"<meta name=robots> {', '.join(meta)}"] if meta else []
                )
            else:
                why = []
            noai_page = ""
            if why:
                noai_page = f"the page {clean_url(url)} says {' and '.join(why)} (no use for AI training)"
                runner.manifest.record_url(
                    url=clean_url(url),
                    label=label,
                    kind="page",
                    source=found_on,
                    final_url=raw.final_url,
                    status="skipped",
                    reason="noai",
                    detail=f"{noai_page}; {len(content.images)} images not taken, links followed",
                    bytes=len(raw.data),
                )
            else:
                runner.manifest.record_url(
                    url=clean_url(url),
                    label=label,
                    kind="page",
                    source=found_on,
                    final_url=raw.final_url,
                    status="crawled",
                    reason="",
                    bytes=len(raw.data),
                )
            for img in content.images:
                add_image(img, clean_url(url), noai_page)
            if depth < source.depth:
                for link in content.links:
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
