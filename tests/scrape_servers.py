"""Real HTTP servers on 127.0.0.1 for the scraper tests (no mocks): a web site with every
failure the downloader must survive, a server that never answers (whole server, or one route),
a server that drips its body, an imgur-like forward proxy, and fake Reddits (OAuth token
endpoint + listing JSON, 429 storms, 5xx, shared URLs, and a pool of 3,000 posts served as
1,000-post listings) that real praw talks to.
"""

from __future__ import annotations

import base64
import io
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image


def png(color: tuple[int, int, int], size: tuple[int, int] = (16, 12)) -> bytes:
    """A real PNG of one color (distinct colors give distinct sha256)."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> bytes:
    """A real baseline JPEG with some texture."""
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 3):
        img.putpixel((x, x % size[1]), (255 - color[0], 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this, +40 ms per answer

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _dispatch(self) -> None:
        owner = self.server.owner
        # A forward proxy request carries an absolute URL ("GET http://i.imgur.com/x.jpg").
        key = self.path if self.path.startswith("http") else urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        with owner.lock:
            owner.requests.append((self.command, self.path, dict(self.headers)))
            owner.times.setdefault(key, []).append(time.monotonic())
            owner.hits[key] += 1
            self.hit = owner.hits[key]
        route = owner.routes.get(key)
        if route is None:
            for prefix, r in owner.prefix_routes.items():
                if key.startswith(prefix):
                    route = r
                    break
        if route is None:
            self.send_body(b"<html><body>not found</body></html>", "text/html", status=404)
            return
        route(self)

    do_GET = _dispatch
    do_POST = _dispatch

    def send_body(
        self,
        body: bytes,
        ctype: str,
        status: int = 200,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in headers.items() if isinstance(headers, dict) else headers or []:
            self.send_header(k, v)
        if self.close_connection:  # the client asked "Connection: close" (prawcore's token request does)
            self.send_header("Connection", "close")  # say so, or it may reuse a socket we are closing
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_body(b"", "text/plain", status=status, headers={"Location": location})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: Server

    def handle_error(self, request, client_address) -> None:  # clients hang up on purpose (caps, timeouts)
        pass


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) running in a daemon thread.

    Args:
        routes: dict path -> callable(handler) (exact paths, or absolute URLs for proxy use).
        prefix_routes: dict path prefix -> callable(handler).
    """

    def __init__(self, routes: dict[str, Route] | None = None, prefix_routes: dict[str, Route] | None = None):
        self.routes = dict(routes or {})
        self.prefix_routes = dict(prefix_routes or {})
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.hits: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        self.release = threading.Event()  # set on exit: routes that hang or drip stop then
        self.httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def paths(self) -> list[str]:
        return [p for _, p, _ in self.requests]

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def hang(h: Handler) -> None:
    """A route that reads the request and never answers (until the server stops)."""
    h.server.owner.release.wait(120)
    h.close_connection = True


def drip(body: bytes, every: float = 0.2) -> Route:
    """A route that sends its headers at once, then one byte every `every` seconds."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.close_connection = True
        try:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                if h.server.owner.release.wait(every):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass

    return route


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def static(body: bytes, ctype: str = "image/png", status: int = 200, headers: dict[str, str] | None = None) -> Route:
    return lambda h: h.send_body(body, ctype, status=status, headers=headers)


def page(html: str) -> Route:
    return static(html.encode("utf-8"), "text/html; charset=utf-8")


class HangServer:
    """Accepts TCP connections and never answers (the kernel completes the handshake)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._conns: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self._conns.append(conn)
            except (TimeoutError, OSError):
                continue

    def __enter__(self) -> HangServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self.thread.join(1)
        for c in self._conns:
            c.close()
        self.sock.close()


# ------------------------------------------------------------------------------ the web site
IMAGES = {
    "/img/small.png": png((10, 20, 30)),
    "/img/big.png": png((200, 10, 10), (40, 30)),
    "/img/lazy.png": png((10, 200, 10)),
    "/img/linked.jpg": jpeg((10, 10, 200)),
    "/img/og.png": png((120, 120, 0)),
    "/img/nested.png": png((0, 120, 120)),
    "/img/deep.png": png((120, 0, 120)),
    "/img/redirected.png": png((50, 60, 70)),
    "/img/private.png": png((1, 2, 3)),
    "/img/copy-of-small.png": png((10, 20, 30)),
    "/img/picture.webp": None,  # filled below
}


def _webp() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (90, 80, 70)).save(buf, format="WEBP")
    return buf.getvalue()


IMAGES["/img/picture.webp"] = _webp()


def noisy_jpeg(size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    """A JPEG of random noise: its entropy-coded data is most of the file (truncation hits pixels)."""
    import numpy as np

    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def web_site(other_base: str = "http://127.0.0.1:9") -> Server:
    """The test web site. `other_base` is another site (links there must not be followed)."""
    good_jpeg = noisy_jpeg((64, 48))

    def ratelimited(h: Handler) -> None:
        if h.hit == 1:
            h.send_body(b"slow down", "text/plain", status=429, headers={"Retry-After": "1"})
        else:
            h.send_body(png((33, 44, 55)), "image/png")

    def flaky(h: Handler) -> None:
        if h.hit <= 2:
            h.send_body(b"busy", "text/plain", status=503)
        else:
            h.send_body(png((66, 77, 88)), "image/png")

    def huge_no_length(h: Handler) -> None:  # streams past the cap without any Content-Length
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        head = png((1, 1, 1))
        try:
            h.wfile.write(head)
            for _ in range(40):
                h.wfile.write(b"\0" * 8192)
        except (BrokenPipeError, ConnectionResetError):
            pass

    index = f"""<!doctype html><html><head>
<meta property="og:image" content="/img/og.png">
<title>gallery</title></head><body>
<img src="img/small.png">
<img src="/img/small-fallback.png" srcset="img/tiny.png 100w, img/big.png 800w, img/mid.png 400w">
<div class="lazy" data-src="/img/lazy.png"></div>
<picture><source srcset="/img/picture.webp 1x"><img src="/img/small.png"></picture>
<a href="/img/linked.jpg">full size</a>
<a href="sub/page.html">more</a>
<a href="/private/secret.html">private</a>
<img src="/private/hidden.png">
<a href="{other_base}/elsewhere.html">another site</a>
<img src="/redirect/img"> <img src="/loop/a.png"> <img src="/missing.jpg">
<img src="/ratelimited.png"> <img src="/flaky.png"> <img src="/fake.jpg">
<img src="/truncated.jpg"> <img src="/huge.png"> <img src="/huge-declared.png">
<img src="/img/copy-of-small.png"> <img src="ftp://127.0.0.1/x.png">
<img src="/img/small.png#again">
</body></html>"""
    sub = """<html><body><img src="../img/nested.png"><a href="deeper.html">deeper</a>
<a href="/index.html">home</a></body></html>"""
    deeper = """<html><body><img src="/img/deep.png"></body></html>"""
    routes: dict[str, Route] = {
        "/robots.txt": static(b"User-agent: *\nDisallow: /private/\n", "text/plain"),
        "/index.html": page(index),
        "/sub/page.html": page(sub),
        "/sub/deeper.html": page(deeper),
        "/private/secret.html": page("<img src='/img/private.png'>"),
        "/private/hidden.png": static(IMAGES["/img/private.png"]),
        "/redirect/img": lambda h: h.redirect("/img/redirected.png"),
        "/loop/a.png": lambda h: h.redirect("/loop/b.png"),
        "/loop/b.png": lambda h: h.redirect("/loop/a.png"),
        "/ratelimited.png": ratelimited,
        "/flaky.png": flaky,
        "/fake.jpg": static(b"<!DOCTYPE html><html><body>Image not found</body></html>", "image/jpeg"),
        "/truncated.jpg": static(good_jpeg[: len(good_jpeg) // 2], "image/jpeg"),
        "/huge.png": huge_no_length,
        "/huge-declared.png": lambda h: h.send_body(b"", "image/png", length=10**9),
        "/good.jpg": static(good_jpeg, "image/jpeg"),
    }
    for path, data in IMAGES.items():
        routes[path] = static(data, "image/webp" if path.endswith(".webp") else "image/png")
    return Server(routes)


def slow_site(n: int, delay: float) -> Server:
    """A page linking `n` images, each answered after `delay` seconds (for kill -9 tests)."""
    imgs = "".join(f'<img src="/slow/{i}.png">' for i in range(n))

    def slow(h: Handler) -> None:
        i = int(urlsplit(h.path).path.rsplit("/", 1)[1].split(".")[0])
        time.sleep(delay)
        h.send_body(png((i, 255 - i, (i * 7) % 256), (8 + i % 5, 8)), "image/png")

    return Server(
        {"/gallery.html": page(f"<html><body>{imgs}</body></html>"), "/robots.txt": static(b"", "text/plain")},
        {"/slow/": slow},
    )


# ------------------------------------------------------------------------------ fake Reddit
TOKEN = "TOKEN-do-not-leak-7f3a9"


def _post(pid: str, sub: str, **fields: object) -> dict:
    d = {
        "id": pid,
        "name": f"t3_{pid}",
        "subreddit": sub,
        "title": f"post {pid}",
        "author": f"user_{pid}",
        "permalink": f"/r/{sub}/comments/{pid}/post_{pid}/",
        "is_self": False,
        "over_18": False,
        "is_video": False,
        "removed_by_category": None,
        "selftext": "",
        "created_utc": 1700000000.0,
        "score": 10,
        "num_comments": 0,
        "url": f"https://www.reddit.com/r/{sub}/comments/{pid}/",
    }
    d.update(fields)
    return d


def _listing_json(children: list[dict], after: str | None) -> bytes:
    return json.dumps(
        {
            "kind": "Listing",
            "data": {
                "after": after,
                "before": None,
                "dist": len(children),
                "children": [{"kind": "t3", "data": c} for c in children],
            },
        }
    ).encode()


def _page_of(posts: list[dict], query: dict[str, list[str]], page: int = 100) -> bytes:
    """One page of `posts` after the `after` fullname in `query`, `page` (or `limit`) posts long."""
    size = min(page, int(query.get("limit", [page])[0] or page))
    after = query.get("after", [None])[0]
    start = 0
    if after:
        start = next((i + 1 for i, c in enumerate(posts) if f"t3_{c['id']}" == after), len(posts))
    children = posts[start : start + size]
    nxt = f"t3_{children[-1]['id']}" if children and start + size < len(posts) else None
    return _listing_json(children, nxt)


class RedditServer(Server):
    """A fake Reddit: the OAuth token endpoint plus `/r/<sub>/<sort>` listings from `listing()`.

    `listing(h, sub, sort, query)` answers one listing request; the default serves
    `self.subs[sub]` (a list of post dicts) in pages of 100. Images live under `/i/`.
    """

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.subs: dict[str, list[dict]] = {}
        self.routes["/api/v1/access_token"] = self._token
        self.prefix_routes["/r/"] = self._sub_listing
        self.prefix_routes["/comments/"] = static(b"[]", "application/json")  # a lazy fetch would land here

    def listing_requests(self, sub: str, sort: str | None = None) -> list[str]:
        prefix = f"/r/{sub}/" + (sort or "")
        return [p for p in self.paths() if p.startswith(prefix)]

    def _token(self, h: Handler) -> None:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            h.send_body(json.dumps({"message": "Unauthorized", "error": 401}).encode(), "application/json", status=401)
            return
        h.send_body(
            json.dumps({"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600, "scope": "*"}).encode(),
            "application/json",
        )

    def _sub_listing(self, h: Handler) -> None:
        parts = urlsplit(h.path)
        bits = parts.path.split("/")
        sub, sort = bits[2], (bits[3] if len(bits) > 3 else "")
        if h.headers.get("Authorization") != f"bearer {TOKEN}":
            h.send_body(b'{"error": 401}', "application/json", status=401)
            return
        self.listing(h, sub, sort, parse_qs(parts.query))

    def listing(self, h: Handler, sub: str, sort: str, query: dict[str, list[str]]) -> None:
        if sub not in self.subs:
            h.send_body(b'{"message": "Not Found", "error": 404}', "application/json", status=404)
            return
        h.send_body(_page_of(self.subs[sub], query), "application/json")


def reddit_server(
    client_id: str, client_secret: str, *, listing_429_first: bool = True, big: int = 1000
) -> RedditServer:
    """A fake Reddit with the subreddits the tests use.

    - `r/cars` has two pages: link posts, a gallery with one invalid item, a crosspost, a self
      post, a removed post, an NSFW post, a video, a page link with a preview, an HTML link, a
      link without extension whose content is an image. With `listing_429_first` its first
      listing request is answered 429 with `Retry-After: 1`.
    - `r/huge` has `big` self posts.
    - `r/shared`: posts that point at one image (removed, kept, repost, crosspost) and at one
      HTML page (removed, the page, repost); append to `srv.subs["shared"]` between runs.
    - `r/private` answers 403; `r/storm` always answers 429 (`Retry-After: 1`), `r/storm_reset`
      too but with `x-ratelimit-reset: 1` only; `r/flaky` answers 503 to its first
      `srv.flaky_failures` requests, then serves `r/cars`'s first page.
    """
    srv = RedditServer(client_id, client_secret)
    b = srv.base
    imgs = {
        "/i/a.jpg": jpeg((200, 0, 0)),
        "/i/a-copy.jpg": None,
        "/i/g1.png": png((0, 200, 0)),
        "/i/g3.png": png((0, 0, 200)),
        "/i/cross.png": png((200, 200, 0)),
        "/i/preview.png": png((0, 200, 200)),
        "/i/photo": png((200, 0, 200)),
        "/i/removed.png": png((9, 9, 9)),
        "/i/nsfw.png": png((99, 99, 99)),
        "/i/shared.jpg": jpeg((10, 100, 200)),
    }
    imgs["/i/a-copy.jpg"] = imgs["/i/a.jpg"]
    for path, data in imgs.items():
        srv.routes[path] = static(data, "image/png")
    srv.routes["/news/article.html"] = page("<html><body>an article</body></html>")
    srv.routes["/news/nopreview.html"] = page("<html><body>another article</body></html>")
    srv.routes["/news/shared.html"] = page("<html><body>a page many posts link</body></html>")

    page1, page2 = _cars_pages(b)
    srv.cars_pages = [page1, page2]
    srv.subs["cars"] = page1 + page2
    srv.subs["huge"] = [_post(f"h{i}", "huge", is_self=True) for i in range(big)]
    srv.subs["shared"] = _shared_posts(b)
    srv.flaky_failures = 2
    srv.listing = _special_listings(srv, srv.listing, page1, listing_429_first)
    return srv


def _cars_pages(b: str) -> tuple[list[dict], list[dict]]:
    """The two pages of `r/cars` (see `reddit_server`), with images and pages under `b`."""
    page1 = [
        _post("p1", "cars", url=f"{b}/i/a.jpg", domain="127.0.0.1"),
        _post(
            "p2",
            "cars",
            is_gallery=True,
            url="https://www.reddit.com/gallery/p2",
            gallery_data={
                "items": [{"media_id": "g1", "id": 1}, {"media_id": "g2", "id": 2}, {"media_id": "g3", "id": 3}]
            },
            media_metadata={
                "g1": {
                    "status": "valid",
                    "e": "Image",
                    "m": "image/png",
                    "s": {"u": f"{b}/i/g1.png?w=16&amp;s=abc", "x": 16, "y": 12},
                },
                "g2": {"status": "failed"},
                "g3": {
                    "status": "valid",
                    "e": "Image",
                    "m": "image/png",
                    "s": {"u": f"{b}/i/g3.png", "x": 16, "y": 12},
                },
            },
        ),
        _post(
            "p3",
            "cars",
            url="/r/othersub/comments/x1/orig/",
            crosspost_parent="t3_x1",
            crosspost_parent_list=[_post("x1", "othersub", url=f"{b}/i/cross.png")],
        ),
        _post("p4", "cars", is_self=True, selftext="just text"),
        _post("p5", "cars", url=f"{b}/i/removed.png", removed_by_category="moderator"),
        _post("p6", "cars", url=f"{b}/i/nsfw.png", over_18=True),
        _post("p7", "cars", url="https://v.redd.it/abc123", is_video=True, post_hint="hosted:video"),
    ]
    page2 = [
        _post(
            "p8",
            "cars",
            url=f"{b}/news/article.html",
            post_hint="link",
            preview={
                "images": [{"source": {"url": f"{b}/i/preview.png?width=16&amp;auto=webp", "width": 16, "height": 12}}]
            },
        ),
        _post("p9", "cars", url=f"{b}/i/a-copy.jpg"),
        _post("p10", "cars", url=f"{b}/news/nopreview.html"),
        _post("p11", "cars", url=f"{b}/i/photo"),
    ]
    return page1, page2


def _shared_posts(b: str) -> list[dict]:
    """`r/shared`: posts pointing at one image and at one HTML page (see `reddit_server`)."""
    shared = f"{b}/i/shared.jpg"
    s2 = _post("s2", "shared", url=shared)
    return [
        _post("s1", "shared", url=shared, removed_by_category="moderator"),
        s2,
        _post("s3", "shared", url=shared, title="repost of s2"),
        _post("s4", "shared", url="/r/shared/comments/s2/", crosspost_parent="t3_s2", crosspost_parent_list=[dict(s2)]),
        _post("s5", "shared", url=f"{b}/news/shared.html", removed_by_category="moderator"),
        _post("s6", "shared", url=f"{b}/news/shared.html"),
        _post("s7", "shared", url=f"{b}/news/shared.html", title="repost of s6"),
    ]


def _special_listings(
    srv: RedditServer, base_listing: Callable, page1: list[dict], listing_429_first: bool
) -> Callable[[Handler, str, str, dict[str, list[str]]], None]:
    """The listing handler of `reddit_server`: 403, 429, 503 subreddits and `r/cars`'s two pages."""

    def listing(h: Handler, sub: str, sort: str, query: dict[str, list[str]]) -> None:
        if sub == "private":
            h.send_body(b'{"reason": "private", "error": 403}', "application/json", status=403)
        elif sub == "storm":
            h.send_body(b'{"error": 429}', "application/json", status=429, headers={"Retry-After": "1"})
        elif sub == "storm_reset":
            h.send_body(b'{"error": 429}', "application/json", status=429, headers={"x-ratelimit-reset": "1"})
        elif sub == "flaky":
            if srv.hits[urlsplit(h.path).path] <= srv.flaky_failures:
                h.send_body(b'{"error": 503}', "application/json", status=503)
            else:
                h.send_body(_listing_json(page1, None), "application/json")
        elif sub == "cars":
            path = urlsplit(h.path).path
            if listing_429_first and srv.hits[path] == 1 and "after" not in query:
                h.send_body(b'{"error": 429}', "application/json", status=429, headers={"Retry-After": "1"})
                return
            i = 1 if query.get("after") == ["t3_p7"] else 0
            h.send_body(_listing_json(srv.cars_pages[i], "t3_p7" if i == 0 else None), "application/json")
        else:
            base_listing(h, sub, sort, query)

    return listing


class PoolReddit(RedditServer):
    """A fake Reddit whose `r/pool` has `pool` posts and serves `per_listing` of them per listing.

    Every listing (`top` per `t`, `new`, `rising`, `search` per `q` and `t`) is its own seeded
    random sample of the pool in its own order, as Reddit's are overlapping but different; `hot`
    is the same as `top` with `t=all` (a listing that brings nothing new). `new` lists the newest
    `per_listing` posts, newest first, after `srv.fresh` (posts added later, newest first).
    Every 10th post links an image (`/i/pool/<n>.png`, distinct content), the others are self posts.

    Attributes:
        served: dict listing key -> list of post ids it serves (to compute the expected union).
    """

    def __init__(self, client_id: str, client_secret: str, pool: int = 3000, per_listing: int = 1000):
        super().__init__(client_id, client_secret)
        self.pool = [self._pool_post(n) for n in range(pool)]
        self.per_listing = per_listing
        self.fresh: list[dict] = []
        self.served: dict[str, list[str]] = {}
        self.prefix_routes["/i/pool/"] = self._image

    def _pool_post(self, n: int) -> dict:
        if n % 10 == 0:
            return _post(f"q{n}", "pool", url=f"{self.base}/i/pool/{n}.png", created_utc=1.6e9 + n)
        return _post(f"q{n}", "pool", is_self=True, created_utc=1.6e9 + n)

    def _image(self, h: Handler) -> None:
        n = int(urlsplit(h.path).path.rsplit("/", 1)[1].split(".")[0])
        h.send_body(png((n % 256, (n // 256) % 256, 77), (8, 8)), "image/png")

    def posts_for(self, sort: str, query: dict[str, list[str]]) -> tuple[str, list[dict]]:
        t = query.get("t", ["all"])[0]
        if sort == "hot":
            sort, t = "top", "all"
        if sort == "new":
            newest = sorted(self.pool, key=lambda d: -d["created_utc"])[: self.per_listing]
            return "new", self.fresh + newest
        key = f"{sort}/{t}" + (f"/{query.get('q', [''])[0]}" if sort == "search" else "")
        order = random.Random(key).sample(self.pool, self.per_listing)
        return key, order

    def listing(self, h: Handler, sub: str, sort: str, query: dict[str, list[str]]) -> None:
        if sub != "pool":
            super().listing(h, sub, sort, query)
            return
        key, posts = self.posts_for(sort, query)
        self.served[key] = [p["id"] for p in posts]
        h.send_body(_page_of(posts, query), "application/json")


def add_fresh(srv: PoolReddit, n: int) -> list[str]:
    """Adds `n` new self posts at the head of `r/pool/new`; returns their ids."""
    start = len(srv.fresh)
    new = [_post(f"f{start + i}", "pool", is_self=True, created_utc=2e9 + start + i) for i in range(n)]
    srv.fresh[:0] = list(reversed(new))
    return [p["id"] for p in new]


def praw_ini(path, base: str, client_id: str, client_secret: str, section: str = "DEFAULT") -> None:
    """Writes a praw.ini pointing real praw at a fake Reddit server."""
    path.write_text(
        f"[{section}]\nclient_id={client_id}\nclient_secret={client_secret}\n"
        f"user_agent=imgclf-tests/0.1 by tester\noauth_url={base}\nreddit_url={base}\n",
        encoding="utf-8",
    )
