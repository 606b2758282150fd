"""What a web page offers the scraper: image URLs, links and robots `<meta>` directives.

From each page (parsed with the standard library's `html.parser`, relative URLs resolved
against the page's final URL and `<base href>`), images are collected from:

- `<img src>`; when `srcset` is present, its largest candidate instead (largest `w`
  descriptor, else largest `x` density, per the HTML standard's srcset syntax);
- `<source srcset>` inside `<picture>`, and lazy-loading attributes `data-src`,
  `data-srcset`, `data-original`, `data-lazy-src` on any element;
- `<a href>` whose path ends in an image extension;
- `<meta property="og:image">` (and `og:image:url`, `og:image:secure_url`, `twitter:image`).

Other `<a href>` are links (`imgclf.scrape.web` follows them on the same site, `site_of`).
Pure functions of the page's text: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from imgclf.images import IMAGE_EXTENSIONS
from imgclf.net.directives import robots_directives

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
    except Exception:  # noqa: BLE001 - html.parser is lenient; what was collected before an oddity is kept
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
