"""`scrape web` against a real local web site: extraction, depth, robots, failures, resume, CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sqlite3
import time

import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.config import ScrapeConfig, WebSource
from imgclf.errors import ScrapeError
from imgclf.records.manifest import Manifest
from imgclf.scrape.pages import extract, largest_srcset
from imgclf.scrape.web import scrape_web
from scrape_servers import IMAGES, Server, png, static, web_site

CFG = ScrapeConfig(workers=4, delay=0, retries=2, backoff=0.05, connect_timeout=2, read_timeout=2, max_bytes=50_000)
NAME = re.compile(r"^[0-9a-f]{16}\.(png|jpg|webp)$")


def rows(out):
    db = sqlite3.connect(out / "_manifest.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM attempts")]
    finally:
        db.close()


def test_largest_srcset_and_extract():
    assert largest_srcset("a.jpg 100w, b.jpg 800w, c.jpg 400w") == "b.jpg"
    assert largest_srcset("a.jpg, b.jpg 2x, c.jpg 1.5x") == "b.jpg"
    assert largest_srcset("") is None
    html = """<html><head><base href="/base/"><meta property="og:image" content="og.png"></head>
    <body><img src="a.png"><img srcset="s.png 1x, l.png 3x" src="fallback.png"><span data-src="lazy.png"></span>
    <a href="big.JPG">x</a><a href="next.html#top">n</a><img src="data:image/png;base64,xx"></body></html>"""
    images, links = extract(html, "http://h.test/dir/page.html")
    assert images == [
        "http://h.test/base/og.png",
        "http://h.test/base/a.png",
        "http://h.test/base/l.png",
        "http://h.test/base/lazy.png",
        "http://h.test/base/big.JPG",
    ]
    assert links == ["http://h.test/base/next.html"]


def test_scrape_web_site_depth_robots_and_every_failure(tmp_path):
    out = tmp_path / "raw"
    with Server() as other, web_site(other_base=other.base) as site:
        src = WebSource(urls=[site.url("/index.html")], label="car", depth=1)
        s = scrape_web(src, out, CFG)

        assert s.kept == 10, s
        assert s.skipped == {"robots": 2, "duplicate_content": 1}, s.skipped
        assert s.failed == {
            "unsupported_scheme": 1,
            "too_many_redirects": 1,
            "http_404": 1,
            "html": 1,
            "truncated": 1,
            "too_large": 2,
        }, s.failed
        paths = site.paths()
        # largest srcset candidate only; depth 1 reached sub/page.html but not sub/deeper.html;
        # robots.txt kept us out of /private/; the other site was never contacted.
        assert "/img/big.png" in paths and "/img/small-fallback.png" not in paths and "/img/mid.png" not in paths
        assert "/img/nested.png" in paths and "/sub/deeper.html" not in paths and "/img/deep.png" not in paths
        assert not any(p.startswith("/private/") for p in paths)
        assert other.requests == []
        assert site.hits["/ratelimited.png"] == 2 and site.hits["/flaky.png"] == 3

        files = sorted((out / "car").iterdir())
        assert len(files) == 10 and all(NAME.match(f.name) for f in files)
        for f in files:
            assert f.name.startswith(hashlib.sha256(f.read_bytes()).hexdigest()[:16])
        stored = {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
        expected = {
            hashlib.sha256(IMAGES[p]).hexdigest()
            for p in [
                "/img/small.png",
                "/img/big.png",
                "/img/lazy.png",
                "/img/picture.webp",
                "/img/linked.jpg",
                "/img/og.png",
                "/img/redirected.png",
                "/img/nested.png",
            ]
        }
        assert expected <= stored

        by_url = {r["url"]: r for r in rows(out)}
        red = by_url[site.url("/redirect/img")]
        assert red["status"] == "kept" and red["final_url"] == site.url("/img/redirected.png")
        assert red["source"] == site.url("/index.html") and red["label"] == "car"
        assert (red["width"], red["height"]) == (16, 12) and red["bytes"] == len(IMAGES["/img/redirected.png"])
        assert (out / red["path"]).is_file() and red["sha256"] == hashlib.sha256(
            IMAGES["/img/redirected.png"]
        ).hexdigest()
        assert by_url[site.url("/fake.jpg")]["reason"] == "html"
        assert by_url[site.url("/private/hidden.png")]["reason"] == "robots"
        assert by_url[site.url("/sub/page.html")]["kind"] == "page"

        # Rerun: nothing is downloaded again, nothing new stored.
        image_hits = {p: n for p, n in site.hits.items() if not p.endswith((".html", ".txt"))}
        s2 = scrape_web(src, out, CFG)
        assert s2.kept == 0 and s2.failed == {} and s2.skipped == {"already_done": 18, "robots": 2}, s2
        assert {p: n for p, n in site.hits.items() if not p.endswith((".html", ".txt"))} == image_hits
        assert len(list((out / "car").iterdir())) == 10


def test_transient_failures_are_retried_on_rerun(tmp_path):
    state = {"up": False}

    def sometimes(h):
        if state["up"]:
            h.send_body(png((4, 5, 6)), "image/png")
        else:
            h.send_body(b"down", "text/plain", status=503)

    with Server(
        {"/robots.txt": static(b"", "text/plain"), "/x.png": sometimes, "/gone.png": static(b"", status=404)}
    ) as s:
        src = WebSource(urls=[s.url("/x.png"), s.url("/gone.png")], label="tank")
        first = scrape_web(src, tmp_path, CFG.model_copy(update={"retries": 0}))
        assert first.failed == {"http_503": 1, "http_404": 1}
        state["up"] = True
        second = scrape_web(src, tmp_path, CFG)
        assert second.kept == 1 and second.skipped == {"already_done": 1}  # the 404 is final, the 503 was not


def test_urls_file_page_or_image_limit_and_politeness(tmp_path):
    with web_site() as site:
        f = tmp_path / "urls.txt"
        f.write_text(
            f"# my list\n\n{site.url('/redirect/img')}\n{site.url('/img/og.png')}\n"
            f"{site.url('/img/lazy.png')}\n{site.url('/img/big.png')}\n",
            encoding="utf-8",
        )
        cfg = CFG.model_copy(update={"delay": 0.25})
        s = scrape_web(WebSource(urls_file=f, label="car", limit=3), tmp_path / "o", cfg)
        assert s.kept == 3  # /redirect/img has no image extension: fetched as a page, kept as an image
        assert "/img/big.png" not in site.paths()  # --limit 3
        times = sorted(
            t for p in ("/redirect/img", "/img/redirected.png", "/img/og.png", "/img/lazy.png") for t in site.times[p]
        )
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.2, gaps  # 0.25 s between requests to one host


def test_no_urls_and_bad_urls_file(tmp_path):
    with pytest.raises(ScrapeError, match="no URL"):
        scrape_web(WebSource(label="car"), tmp_path, CFG)
    with pytest.raises(ScrapeError, match="urls-file"):
        scrape_web(WebSource(label="car", urls_file=tmp_path / "missing.txt"), tmp_path, CFG)
    with pytest.raises(ScrapeError, match="label"):
        scrape_web(WebSource(label="../etc", urls=["http://127.0.0.1:9/x"]), tmp_path, CFG)


def test_cli_web_and_status(tmp_path):
    runner = CliRunner()
    with web_site() as site:
        out = tmp_path / "raw"
        res = runner.invoke(
            app,
            [
                "scrape",
                "web",
                site.url("/sub/page.html"),
                site.url("/missing.jpg"),
                "--label",
                "tank",
                "--out",
                str(out),
                "--delay",
                "0",
                "--retries",
                "0",
                "--workers",
                "2",
            ],
        )
        assert res.exit_code == 0, res.output
        assert "1 kept" in res.output and "http_404" in res.output
    res = runner.invoke(app, ["scrape", "status", str(out)])
    assert res.exit_code == 0, res.output
    assert "tank" in res.output and "http_404" in res.output
    res = runner.invoke(app, ["scrape", "status", str(out), "--json"])
    data = json.loads(res.stdout)
    assert data["by_label"]["tank"] == {"kept": 1, "failed": 1} and data["files"]["tank"] == 1
    res = runner.invoke(app, ["scrape", "status", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "no scrape manifest" in res.output and "Traceback" not in res.output


def test_second_scraper_on_same_folder_is_refused(tmp_path):
    with Manifest(tmp_path), pytest.raises(ScrapeError, match="another scrape"):
        Manifest(tmp_path)
    with Manifest(tmp_path):  # released on close
        pass


def test_stale_temp_files_removed_when_a_run_starts(tmp_path):
    (tmp_path / "car").mkdir()
    stale = tmp_path / "car" / ".0123456789abcdef.png.k2j3.tmp"
    stale.write_bytes(b"partial")
    with Server({"/robots.txt": static(b"", "text/plain"), "/a.png": static(png((1, 1, 1)))}) as s:
        t0 = time.monotonic()
        scrape_web(WebSource(urls=[s.url("/a.png")], label="car"), tmp_path, CFG)
        assert time.monotonic() - t0 < 5
    assert not stale.exists() and len(list((tmp_path / "car").iterdir())) == 1


def test_robots_crawl_delay(tmp_path):
    robots = b"User-agent: *\nCrawl-delay: 1\nDisallow: /no/\n"
    with Server(
        {
            "/robots.txt": static(robots, "text/plain"),
            "/a.png": static(png((1, 2, 3))),
            "/b.png": static(png((3, 2, 1))),
            "/no/c.png": static(png((9, 9, 9))),
        }
    ) as s:
        src = WebSource(urls=[s.url("/a.png"), s.url("/b.png"), s.url("/no/c.png")], label="car")
        got = scrape_web(src, tmp_path, CFG)  # CFG.delay is 0: the site's Crawl-delay wins
        assert got.kept == 2 and got.skipped == {"robots": 1}
        assert abs(s.times["/b.png"][0] - s.times["/a.png"][0]) >= 0.9
        assert "/no/c.png" not in s.paths()
