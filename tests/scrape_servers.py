"""Real HTTP servers on 127.0.0.1 for the scraper tests (no mocks): a web site with every
failure the downloader must survive, a server that never answers, an imgur-like forward proxy,
and a fake Reddit (OAuth token endpoint + listing JSON) that real praw talks to.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
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
    server: "_HTTPServer"
    protocol_version = "HTTP/1.1"

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

    def send_body(self, body: bytes, ctype: str, status: int = 200, headers: dict[str, str] | None = None,
                  length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_body(b"", "text/plain", status=status, headers={"Location": location})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: "Server"

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
        self.httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def paths(self) -> list[str]:
        return [p for _, p, _ in self.requests]

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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

    def __enter__(self) -> "HangServer":
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

    return Server({"/gallery.html": page(f"<html><body>{imgs}</body></html>"),
                   "/robots.txt": static(b"", "text/plain")}, {"/slow/": slow})


# ------------------------------------------------------------------------------ fake Reddit
TOKEN = "TOKEN-do-not-leak-7f3a9"


def _post(pid: str, sub: str, **fields: object) -> dict:
    d = {
        "id": pid, "name": f"t3_{pid}", "subreddit": sub, "title": f"post {pid}", "author": f"user_{pid}",
        "permalink": f"/r/{sub}/comments/{pid}/post_{pid}/", "is_self": False, "over_18": False,
        "is_video": False, "removed_by_category": None, "selftext": "", "created_utc": 1700000000.0,
        "score": 10, "num_comments": 0, "url": f"https://www.reddit.com/r/{sub}/comments/{pid}/",
    }
    d.update(fields)
    return d


def reddit_server(client_id: str, client_secret: str, *, listing_429_first: bool = True, big: int = 1000) -> Server:
    """A server that speaks Reddit's OAuth token endpoint and subreddit listing JSON.

    `r/cars` has two pages: link posts, a gallery with one invalid item, a crosspost, a self
    post, a removed post, an NSFW post, a video, a page link with a preview, an HTML link, a
    link without extension whose content is an image. `r/huge` has `big` self posts in pages
    of 100. `r/private` answers 403. Images are served by the same server under `/i/`.
    """
    srv = Server()
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
    }
    imgs["/i/a-copy.jpg"] = imgs["/i/a.jpg"]
    for path, data in imgs.items():
        srv.routes[path] = static(data, "image/png")
    srv.routes["/news/article.html"] = page("<html><body>an article</body></html>")
    srv.routes["/news/nopreview.html"] = page("<html><body>another article</body></html>")

    page1 = [
        _post("p1", "cars", url=f"{b}/i/a.jpg", domain="127.0.0.1"),
        _post("p2", "cars", is_gallery=True, url="https://www.reddit.com/gallery/p2",
              gallery_data={"items": [{"media_id": "g1", "id": 1}, {"media_id": "g2", "id": 2},
                                      {"media_id": "g3", "id": 3}]},
              media_metadata={
                  "g1": {"status": "valid", "e": "Image", "m": "image/png",
                         "s": {"u": f"{b}/i/g1.png?w=16&amp;s=abc", "x": 16, "y": 12}},
                  "g2": {"status": "failed"},
                  "g3": {"status": "valid", "e": "Image", "m": "image/png",
                         "s": {"u": f"{b}/i/g3.png", "x": 16, "y": 12}},
              }),
        _post("p3", "cars", url="/r/othersub/comments/x1/orig/",
              crosspost_parent_list=[_post("x1", "othersub", url=f"{b}/i/cross.png")]),
        _post("p4", "cars", is_self=True, selftext="just text"),
        _post("p5", "cars", url=f"{b}/i/removed.png", removed_by_category="moderator"),
        _post("p6", "cars", url=f"{b}/i/nsfw.png", over_18=True),
        _post("p7", "cars", url="https://v.redd.it/abc123", is_video=True, post_hint="hosted:video"),
    ]
    page2 = [
        _post("p8", "cars", url=f"{b}/news/article.html", post_hint="link",
              preview={"images": [{"source": {"url": f"{b}/i/preview.png?width=16&amp;auto=webp", "width": 16, "height": 12}}]}),
        _post("p9", "cars", url=f"{b}/i/a-copy.jpg"),
        _post("p10", "cars", url=f"{b}/news/nopreview.html"),
        _post("p11", "cars", url=f"{b}/i/photo"),
    ]
    pages = {"cars": [page1, page2],
             "huge": [[_post(f"h{i}", "huge", is_self=True) for i in range(k, min(k + 100, big))] for k in range(0, big, 100)]}

    def listing(children: list[dict], after: str | None) -> bytes:
        return json.dumps({"kind": "Listing", "data": {"after": after, "before": None, "dist": len(children),
                                                          "children": [{"kind": "t3", "data": c} for c in children]}}).encode()

    def token(h: Handler) -> None:
        expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            h.send_body(json.dumps({"message": "Unauthorized", "error": 401}).encode(), "application/json", status=401)
            return
        h.send_body(json.dumps({"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600, "scope": "*"}).encode(),
                    "application/json")

    def sub_listing(h: Handler) -> None:
        parts = urlsplit(h.path)
        _, _, sub, sort = parts.path.split("/")[:4]
        if h.headers.get("Authorization") != f"bearer {TOKEN}":
            h.send_body(b'{"error": 401}', "application/json", status=401)
            return
        if sub == "private":
            h.send_body(b'{"reason": "private", "error": 403}', "application/json", status=403)
            return
        if sub == "cars" and listing_429_first and srv.hits[parts.path] == 1 and "after" not in parts.query:
            h.send_body(b'{"error": 429}', "application/json", status=429, headers={"Retry-After": "1"})
            return
        q = parse_qs(parts.query)
        chunks = pages.get(sub, [])
        after = q.get("after", [None])[0]
        idx = 0
        if after:
            idx = next((i + 1 for i, c in enumerate(chunks) if c and f"t3_{c[-1]['id']}" == after), len(chunks))
        children = chunks[idx] if idx < len(chunks) else []
        nxt = f"t3_{children[-1]['id']}" if children and idx + 1 < len(chunks) else None
        h.send_body(listing(children, nxt), "application/json")

    srv.routes["/api/v1/access_token"] = token
    srv.prefix_routes["/r/"] = sub_listing
    srv.prefix_routes["/comments/"] = static(b"[]", "application/json")  # a lazy fetch would land here
    return srv


def praw_ini(path, base: str, client_id: str, client_secret: str, section: str = "DEFAULT") -> None:
    """Writes a praw.ini pointing real praw at a fake Reddit server."""
    path.write_text(
        f"[{section}]\nclient_id={client_id}\nclient_secret={client_secret}\n"
        f"user_agent=imgclf-tests/0.1 by tester\noauth_url={base}\nreddit_url={base}\n",
        encoding="utf-8",
    )
