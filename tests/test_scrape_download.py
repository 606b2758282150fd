"""The shared safe downloader against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import pytest
import requests
from PIL import Image

from imgclf.config import ScrapeConfig, WebSource
from imgclf.errors import ImageError
from imgclf.net.budget import DEFAULT_URL_BUDGET, retry_wait
from imgclf.net.directives import product_token, robots_directives
from imgclf.net.image import fetch_image
from imgclf.net.urls import redact
from imgclf.scrape.web import scrape_web
from scrape_servers import HangServer, Server, drip, hang, page, png, static, web_site

FAST: dict[str, Any] = dict(connect_timeout=2.0, read_timeout=2.0, backoff=0.05)


@pytest.fixture(scope="module")
def site():
    with web_site() as s:
        yield s


def _reason(url: str, **kw) -> str:
    with pytest.raises(ImageError) as ei:
        fetch_image(url, **{**FAST, **kw})
    return ei.value.reason


def test_good_jpeg_is_verified_and_hashed(site):
    r = fetch_image(site.url("/good.jpg"), **FAST)
    assert r.format == "JPEG" and r.ext == ".jpg"
    assert r.sha256 == hashlib.sha256(r.data).hexdigest()
    assert (r.width, r.height) == (64, 48)
    assert r.final_url == site.url("/good.jpg")


def test_redirect_is_followed_and_final_url_kept(site):
    r = fetch_image(site.url("/redirect/img"), **FAST)
    assert r.final_url == site.url("/img/redirected.png") and r.format == "PNG"


def test_redirect_loop_stops_after_five(site):
    before = site.hits["/loop/a.png"] + site.hits["/loop/b.png"]
    assert _reason(site.url("/loop/a.png")) == "too_many_redirects"
    assert site.hits["/loop/a.png"] + site.hits["/loop/b.png"] - before == 6  # first request + 5 redirects


@pytest.mark.parametrize(
    "path,reason",
    [
        ("/missing.jpg", "http_404"),
        ("/fake.jpg", "html"),  # an HTML page served as image/jpeg
        ("/truncated.jpg", "truncated"),
        ("/huge-declared.png", "too_large"),  # Content-Length over the cap
        ("/huge.png", "too_large"),  # no Content-Length: counted while streaming
    ],
)
def test_content_and_http_rejects(site, path, reason):
    assert _reason(site.url(path), max_bytes=50_000) == reason


def test_only_http_and_https(site):
    assert _reason("ftp://127.0.0.1/x.png") == "unsupported_scheme"
    assert _reason("file:///etc/passwd") == "unsupported_scheme"
    with Server({"/to-file": lambda h: h.redirect("file:///etc/passwd")}) as s:
        assert _reason(s.url("/to-file")) == "unsupported_scheme"


def test_429_with_retry_after_is_honoured(site):
    t0 = time.monotonic()
    r = fetch_image(site.url("/ratelimited.png"), retries=2, **FAST)
    assert r.format == "PNG"
    times = site.times["/ratelimited.png"]
    assert len(times) == 2 and times[1] - times[0] >= 0.9  # Retry-After: 1
    assert time.monotonic() - t0 < 5


def test_503_recovers_with_backoff_or_fails_without_retries():
    state = {"n": 0}

    def flaky(h):
        state["n"] += 1
        if state["n"] <= 2:
            h.send_body(b"busy", "text/plain", status=503)
        else:
            h.send_body(png((1, 2, 3)), "image/png")

    with Server({"/f.png": flaky}) as s:
        assert _reason(s.url("/f.png"), retries=1) == "http_503"  # 2 tries, both 503
        state["n"] = 0
        assert fetch_image(s.url("/f.png"), retries=3, **FAST).format == "PNG"
        assert state["n"] == 3


def test_never_answering_server_times_out_fast():
    with HangServer() as hang:
        t0 = time.monotonic()
        with pytest.raises(ImageError) as ei:
            fetch_image(hang.base + "/x.jpg", connect_timeout=0.5, read_timeout=0.3, retries=1, backoff=0.01)
        assert ei.value.reason == "timeout"
        assert time.monotonic() - t0 < 3


def test_decompression_bomb_rejected():
    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, format="PNG")  # 100 MP, a few KB on disk
    with Server({"/bomb.png": static(buf.getvalue())}) as s:
        assert _reason(s.url("/bomb.png")) == "decompression_bomb"


def test_unknown_format_rejected():
    with Server({"/x.bin": static(b"\x00\x01\x02\x03garbage" * 10, "image/png")}) as s:
        assert _reason(s.url("/x.bin")) == "unsupported_format"


def test_imgur_removed_placeholder_rejected_through_a_proxy():
    """imgur redirects removed images to i.imgur.com/removed.png (161x81). A local forward proxy
    answers for the real host name, so the detection runs on the real URLs."""
    placeholder = png((200, 200, 200), (161, 81))
    proxy = Server(
        {
            "http://i.imgur.com/gone.jpg": lambda h: h.redirect("http://i.imgur.com/removed.png"),
            "http://i.imgur.com/removed.png": static(placeholder),
            "http://i.imgur.com/same-size.png": static(placeholder),
            "http://i.imgur.com/fine.png": static(png((5, 5, 5), (160, 81))),
        }
    )
    with proxy:
        sess = requests.Session()
        sess.trust_env = False
        sess.proxies = {"http": proxy.base}
        for url in ("http://i.imgur.com/gone.jpg", "http://i.imgur.com/same-size.png"):
            assert _reason(url, session=sess) == "placeholder"
        assert fetch_image("http://i.imgur.com/fine.png", session=sess, **FAST).width == 160
        assert "http://i.imgur.com/removed.png" in proxy.paths()
    # The same 161x81 image from a host that is not imgur is a normal image.
    with Server({"/p.png": static(placeholder)}) as s:
        assert fetch_image(s.url("/p.png"), **FAST).width == 161


def test_url_credentials_never_in_errors(site):
    url = site.url("/missing.jpg").replace("http://", "http://bob:hunter2secret@")
    with pytest.raises(ImageError) as ei:
        fetch_image(url, **FAST)
    assert "hunter2secret" not in str(ei.value) and ei.value.reason == "http_404"
    assert redact("token abcd1234 and abcd1234", ["abcd1234"]) == "token *** and ***"


def test_retry_wait_reads_headers():
    assert retry_wait({"Retry-After": "3"}, 0, 1.0) == 3
    assert retry_wait({"x-ratelimit-reset": "7"}, 0, 1.0) == 7
    assert 0 <= retry_wait({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0, 1.0) <= 0.0  # in the past
    for attempt in range(4):  # equal jitter: between d/2 and d
        w = retry_wait(None, attempt, 1.0)
        assert 2**attempt / 2 <= w <= 2**attempt


# ------------------------------------------------------------------- the time budget per URL
def test_budget_spans_every_retry_of_a_never_answering_server():
    """30 s read timeout x 5 retries used to cost ~187 s; the budget caps the whole URL."""
    with HangServer() as hang:
        t0 = time.monotonic()
        with pytest.raises(ImageError) as ei:
            fetch_image(
                hang.base + "/x.jpg", connect_timeout=1, read_timeout=0.6, retries=50, backoff=0.01, total_timeout=1.5
            )
        spent = time.monotonic() - t0
    assert ei.value.reason == "timeout" and "time budget per URL: 1.5 s" in ei.value.detail
    assert len(hang._conns) >= 2  # it did retry, within the budget
    assert spent < 6


def test_budget_cuts_a_dripping_body():
    body = png((1, 2, 3), (64, 64)) + b"\0" * 2000
    with Server({"/drip.png": drip(body, every=0.1)}) as s:
        t0 = time.monotonic()
        with pytest.raises(ImageError) as ei:
            fetch_image(s.url("/drip.png"), connect_timeout=1, read_timeout=5, retries=0, total_timeout=1.5)
        assert time.monotonic() - t0 < 5  # a byte every 0.1 s never trips the 5 s read timeout
    assert ei.value.reason == "timeout" and "budget" in ei.value.detail


def test_retry_after_beyond_the_budget_gives_up_at_once():
    with Server({"/slow.png": static(b"wait", "text/plain", status=503, headers={"Retry-After": "30"})}) as s:
        t0 = time.monotonic()
        assert _reason(s.url("/slow.png"), retries=3, total_timeout=5) == "http_503"
        assert time.monotonic() - t0 < 3 and s.hits["/slow.png"] == 1


def test_default_budget_is_120_s():
    import inspect

    assert ScrapeConfig().url_budget == DEFAULT_URL_BUDGET == 120
    assert inspect.signature(fetch_image).parameters["total_timeout"].default is None  # None = the default budget


def test_page_of_twenty_with_one_hanging_image_keeps_the_rest(tmp_path):
    """The issue's case: one URL that never answers in a gallery of twenty."""
    routes = {f"/img/{i}.png": static(png((i * 10, 3, 7))) for i in range(19)}
    routes["/img/hang.png"] = hang
    routes["/robots.txt"] = static(b"", "text/plain")
    imgs = (
        "".join(f'<img src="/img/{i}.png">' for i in range(10))
        + '<img src="/img/hang.png">'
        + "".join(f'<img src="/img/{i}.png">' for i in range(10, 19))
    )
    routes["/gallery.html"] = page(f"<html><body>{imgs}</body></html>")
    cfg = ScrapeConfig(workers=4, delay=0, retries=5, backoff=0.05, connect_timeout=1, read_timeout=1, url_budget=1.5)
    with Server(routes) as s:
        t0 = time.monotonic()
        got = scrape_web(WebSource(urls=[s.url("/gallery.html")], label="car"), tmp_path, cfg)
        assert time.monotonic() - t0 < 15
    assert got.kept == 19 and got.failed == {"timeout": 1}, got


# ----------------------------------------------------------------------------- X-Robots-Tag
def test_robots_directives_parsing():
    assert product_token("imgclf/0.1 (image-classification dataset builder)") == "imgclf"
    assert robots_directives(["noai, NoImageAI"]) == {"noai", "noimageai"}
    assert robots_directives(["otherbot: noai"], "imgclf") == set()
    assert robots_directives(["imgclf: noai", "noindex"], "imgclf") == {"noai", "noindex"}
    assert robots_directives(["unavailable_after: 25 Jun 2010 15:00:00 PST"]) == {"unavailable_after"}


def test_x_robots_tag_noai_on_an_image():
    img = png((4, 4, 4))
    with Server(
        {
            "/a.png": static(img, headers={"X-Robots-Tag": "noai"}),
            "/b.png": static(img, headers={"X-Robots-Tag": "googlebot: noimageai"}),
        }
    ) as s:
        assert _reason(s.url("/a.png"), respect_noai=True) == "noai"
        assert fetch_image(s.url("/a.png"), **FAST).format == "PNG"  # off by default (predict)
        assert fetch_image(s.url("/b.png"), respect_noai=True, **FAST).format == "PNG"  # another crawler's
