"""robots.txt per RFC 9309 and the noai convention, against real servers on 127.0.0.1.

2xx obeyed (Protego's matching), 4xx allow, 5xx / 429 / timeouts / refused connections / too
many redirects keep the whole origin out for the run with one warning line; `X-Robots-Tag:
noai` on an image and `<meta name="robots" content="noai">` on a page honoured by default."""

from __future__ import annotations

import sqlite3
import time

import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.config import ScrapeConfig, WebSource
from imgclf.net.session import new_session
from imgclf.scrape.robots import Robots
from imgclf.scrape.web import scrape_web
from scrape_servers import HangServer, Server, closed_port, page, png, static

CFG = ScrapeConfig(workers=2, delay=0, retries=2, backoff=0.05, connect_timeout=1, read_timeout=1, url_budget=5)


def url_rows(out) -> dict[str, dict]:
    db = sqlite3.connect(out / "_manifest.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return {r["url"]: dict(r) for r in db.execute("SELECT * FROM urls")}
    finally:
        db.close()


def robots_notes(summary) -> list[str]:
    return [n for n in summary.notes if n.startswith("robots.txt of")]


def site(robots_route, **extra) -> Server:
    routes = {
        "/robots.txt": robots_route,
        "/index.html": page('<img src="/a.png"><a href="/private/p.html">p</a>'),
        "/a.png": static(png((1, 2, 3))),
        "/private/p.html": page('<img src="/private/x.png">'),
        "/private/x.png": static(png((3, 2, 1))),
    }
    routes.update(extra)
    return Server(routes)


@pytest.mark.parametrize("status", [404, 403, 401, 410])
def test_4xx_robots_txt_allows_everything(tmp_path, status):
    with site(static(b"nope", "text/plain", status=status)) as s:
        got = scrape_web(WebSource(urls=[s.url("/index.html")], label="car", depth=1), tmp_path, CFG)
        assert got.kept == 2 and got.skipped == {} and robots_notes(got) == []  # RFC 9309 §2.3.1.3
        assert s.hits["/private/x.png"] == 1 and s.hits["/robots.txt"] == 1


@pytest.mark.parametrize("status", [503, 500, 429])
def test_5xx_or_429_robots_txt_disallows_the_origin_then_a_rerun_retries(tmp_path, status):
    state = {"up": False}

    def robots(h):
        if state["up"]:
            h.send_body(b"User-agent: *\nDisallow: /private/\n", "text/plain")
        else:
            h.send_body(b"busy", "text/plain", status=status)

    with site(robots) as s:
        src = WebSource(urls=[s.url("/index.html"), s.url("/a.png")], label="car", depth=1)
        got = scrape_web(src, tmp_path, CFG)
        assert got.kept == 0 and got.skipped == {"robots_unreachable": 2}, got
        assert set(s.paths()) == {"/robots.txt"} and s.hits["/robots.txt"] == 3  # 1 try + 2 retries, nothing else
        (note,) = robots_notes(got)  # one line for the origin, saying why and what to do
        assert f"http_{status}" in note and "RFC 9309" in note and "Run the same command again" in note
        rows = url_rows(tmp_path)
        assert rows[s.url("/a.png")]["reason"] == "robots_unreachable" and rows[s.url("/a.png")]["status"] == "skipped"

        state["up"] = True  # the site answers now: nothing was settled, the rerun crawls
        again = scrape_web(src, tmp_path, CFG)
        assert again.kept == 1 and again.skipped == {"robots": 1} and s.hits["/a.png"] == 1
        assert "/private/p.html" not in s.paths()  # the page robots.txt disallows was never crawled


def test_refused_connection_disallows_the_origin_with_one_line(tmp_path):
    port = closed_port()  # a web server "still starting"
    urls = [f"http://127.0.0.1:{port}/a.png", f"http://127.0.0.1:{port}/private/b.png"]
    got = scrape_web(WebSource(urls=urls, label="car"), tmp_path, CFG)
    assert got.skipped == {"robots_unreachable": 2} and got.failed == {}
    (note,) = robots_notes(got)
    assert "connection_error" in note and f"127.0.0.1:{port}" in note


def test_never_answering_robots_txt_disallows_within_the_budget(tmp_path):
    with HangServer() as hang:
        t0 = time.monotonic()
        got = scrape_web(
            WebSource(urls=[hang.base + "/a.png"], label="car"), tmp_path, CFG.model_copy(update={"url_budget": 1.0})
        )
        assert time.monotonic() - t0 < 10  # the budget (1 s here) holds for robots.txt too
    assert got.skipped == {"robots_unreachable": 1}
    assert "timeout" in robots_notes(got)[0]


def test_robots_txt_redirect_loop_disallows(tmp_path):
    routes = {
        "/robots.txt": lambda h: h.redirect("/r1"),
        "/r1": lambda h: h.redirect("/robots.txt"),
        "/a.png": static(png((1, 1, 1))),
    }
    with Server(routes) as s:
        got = scrape_web(WebSource(urls=[s.url("/a.png")], label="car"), tmp_path, CFG)
        assert got.skipped == {"robots_unreachable": 1} and s.hits["/a.png"] == 0
        assert "too_many_redirects" in robots_notes(got)[0]


def test_rfc9309_matching_is_protegos(tmp_path):
    """Our product token's group wins over `*`; the longest match wins; `*` and `$` work;
    a robots.txt over 512 KiB is read up to 512 KiB instead of being treated as unreachable."""
    body = (
        b"User-agent: *\nDisallow: /\n\n"
        b"User-agent: imgclf\nDisallow: /img/\nAllow: /img/ok*.png$\nDisallow: /*.gif$\n" + b"# padding\n" * 60_000
    )
    with Server({"/robots.txt": static(body, "text/plain")}) as s:
        robots = Robots(new_session(), CFG, None)
        assert robots.allowed(s.url("/page.html"))
        assert not robots.allowed(s.url("/img/no.png"))
        assert robots.allowed(s.url("/img/ok-1.png"))
        assert not robots.allowed(s.url("/img/ok-1.png?x=1"))  # `$` anchors the end
        assert not robots.allowed(s.url("/a/b.gif"))
        other = Robots(new_session(), CFG.model_copy(update={"user_agent": "otherbot/1.0"}), None)
        assert not other.allowed(s.url("/page.html"))  # the `*` group: Disallow: /
        assert robots.check(s.url("/img/no.png")).reason == "robots"


# ---------------------------------------------------------------------------------- noai
def noai_site() -> Server:
    return Server(
        {
            "/robots.txt": static(b"", "text/plain"),
            "/page.html": page(
                '<img src="/a.png"><img src="/b.png"><img src="/c.png"><img src="/e.png"><a href="/meta.html">m</a>'
            ),
            "/a.png": static(png((10, 0, 0)), headers={"X-Robots-Tag": "noai"}),
            "/b.png": static(png((0, 10, 0))),
            "/c.png": static(png((0, 0, 10)), headers={"X-Robots-Tag": "otherbot: noimageai"}),  # not for us
            "/e.png": static(
                png((5, 5, 0)), headers=[("X-Robots-Tag", "noindex"), ("X-Robots-Tag", "imgclf: noimageai")]
            ),
            "/meta.html": page(
                '<html><head><meta name="robots" content="noai, noimageai"></head>'
                '<body><img src="/d.png"></body></html>'
            ),
            "/d.png": static(png((0, 5, 5))),
        }
    )


def test_noai_honoured_by_default_and_settled(tmp_path):
    with noai_site() as s:
        src = WebSource(urls=[s.url("/page.html")], label="car", depth=1)
        got = scrape_web(src, tmp_path, CFG)
        assert got.kept == 2 and got.skipped == {"noai": 3}, got  # b and c kept; a, e (header), d (page meta)
        assert s.hits["/d.png"] == 0  # a page that says noai gives no images at all
        rows = url_rows(tmp_path)
        assert "X-Robots-Tag: noai" in rows[s.url("/a.png")]["detail"]
        assert rows[s.url("/meta.html")]["reason"] == "noai" and "meta name=robots" in rows[s.url("/d.png")]["detail"]
        again = scrape_web(src, tmp_path, CFG)  # the site's wish stands: no request again
        assert s.hits["/a.png"] == 1 and s.hits["/e.png"] == 1 and again.kept == 0
        seed = scrape_web(WebSource(urls=[s.url("/meta.html")], label="car"), tmp_path, CFG)
        assert s.hits["/meta.html"] == 3 and seed.skipped == {
            "already_done": 1
        }  # a noai page is read again, not an image


def test_ignore_noai_takes_them(tmp_path):
    with noai_site() as s:
        res = CliRunner().invoke(
            app,
            [
                "scrape",
                "web",
                s.url("/page.html"),
                "--label",
                "car",
                "--out",
                str(tmp_path),
                "--depth",
                "1",
                "--delay",
                "0",
                "--retries",
                "0",
                "--ignore-noai",
            ],
        )
        assert res.exit_code == 0, res.output
        assert "5 kept" in res.output and s.hits["/d.png"] == 1
