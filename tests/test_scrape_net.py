"""imgclf.net called directly against real HTTP servers on 127.0.0.1, the scrapers' per-URL map,
and the manifest record's errors."""

from __future__ import annotations

import functools
import hashlib
import itertools
import pickle
import sqlite3
import subprocess
import sys
import time
from typing import Any

import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.config import ScrapeConfig
from imgclf.engine import LocalExecutor
from imgclf.errors import DataError
from imgclf.net.budget import UrlBudget
from imgclf.net.errors import DownloadError, is_transient
from imgclf.net.fetch import fetch_bytes
from imgclf.net.image import HASH_PREFIX, fetch_image
from imgclf.net.safety import UnsafeAddressError, check_host, check_url, guarded_session, resolve
from imgclf.net.throttle import HostThrottle
from imgclf.records.manifest import MANIFEST_NAME, SCHEMA_VERSION, Manifest, file_provenance, summarize
from imgclf.scrape.download import Task, UrlOutcome, download_task
from scrape_servers import HangServer, Server, page, png, static

FAST: dict[str, Any] = dict(connect_timeout=2.0, read_timeout=2.0, backoff=0.05)


# ------------------------------------------------------------------------ SSRF (net.safety)
def test_loopback_is_refused_by_default_and_nothing_is_sent():
    with Server({"/a.png": static(png((1, 2, 3)))}) as s:
        with pytest.raises(UnsafeAddressError) as ei:
            check_url(s.url("/a.png"))
        assert (ei.value.address, ei.value.problem) == ("127.0.0.1", "loopback")
        with pytest.raises(UnsafeAddressError):
            check_host("localhost")  # a name that resolves to loopback
        assert check_url(s.url("/a.png"), allow_private=True) == ["127.0.0.1"]

        session = guarded_session()
        try:
            with pytest.raises(UnsafeAddressError) as ei:
                fetch_image(s.url("/a.png"), session=session, retries=2, **FAST)  # refused, not retried
            assert "SSRF" in str(ei.value)
        finally:
            session.close()
        assert s.hits["/a.png"] == 0  # the connection was never made


def test_guarded_session_checks_the_address_of_every_redirect_hop():
    inner = Server({"/b.png": static(png((4, 5, 6)))})
    with inner, Server({"/a.png": lambda h: h.redirect(inner.url("/b.png"))}) as outer:

        def only_outer(host: str, port: int | None) -> list[str]:
            if port != outer.port:
                raise UnsafeAddressError(host, "127.0.0.1", "test-refused")
            return resolve(host, port)

        session = guarded_session(check=only_outer)
        try:
            with pytest.raises(UnsafeAddressError):
                fetch_image(outer.url("/a.png"), session=session, retries=0, **FAST)
        finally:
            session.close()
        assert outer.hits["/a.png"] == 1 and inner.hits["/b.png"] == 0  # the second hop was never sent


# ----------------------------------------------------------------- time budget (net.budget)
def test_url_budget_clock_starts_with_the_first_request():
    budget = UrlBudget(0.5)
    assert budget.remaining() == float("inf")  # waiting for a politeness slot does not count
    budget.start()
    first = budget.remaining()
    assert 0.4 < first <= 0.5
    time.sleep(0.05)
    budget.start()  # a second start does not reset the clock
    assert budget.remaining() < first
    budget.tries = 1
    assert budget.note().startswith("gave up after 1 try in ") and "time budget per URL: 0.5 s" in budget.note()


def test_fetch_bytes_stops_at_the_budget_however_many_retries():
    with HangServer() as hang:
        t0 = time.monotonic()
        with pytest.raises(DownloadError) as ei:
            fetch_bytes(
                hang.base + "/x", connect_timeout=1, read_timeout=0.4, retries=100, backoff=0.01, total_timeout=1
            )
        spent = time.monotonic() - t0
    assert ei.value.reason == "timeout" and "time budget per URL: 1 s" in ei.value.detail
    assert spent < 4 and is_transient(ei.value.reason)


# ------------------------------------------------------------------- politeness (net.throttle)
def test_host_throttle_spaces_requests_to_one_host():
    with Server({"/a": static(b"a", "text/plain"), "/b": static(b"b", "text/plain")}) as s:
        throttle = HostThrottle(0.3)
        for path in ("/a", "/b", "/a"):
            fetch_bytes(s.url(path), throttle=throttle, retries=0, **FAST)
        times = sorted(t for p in ("/a", "/b") for t in s.times[p])
    assert len(times) == 3 and min(b - a for a, b in itertools.pairwise(times)) >= 0.25


# ----------------------------------------------------------------- transport (net.fetch)
def test_fetch_bytes_cap_keep_prefix_and_noai():
    body = b"x" * 5000
    with Server(
        {
            "/big.txt": static(body, "text/plain"),
            "/noai.png": static(png((1, 1, 1)), headers={"X-Robots-Tag": "noai"}),
        }
    ) as s:
        with pytest.raises(DownloadError) as ei:
            fetch_bytes(s.url("/big.txt"), max_bytes=1000, retries=0, **FAST)
        assert ei.value.reason == "too_large" and not is_transient("too_large")
        raw = fetch_bytes(s.url("/big.txt"), max_bytes=1000, keep_prefix=True, retries=0, **FAST)
        assert raw.truncated and raw.data == body[:1000] and raw.status == 200
        raw = fetch_bytes(s.url("/noai.png"), retries=0, **FAST)
        assert raw.robots_tags == {"noai"}  # read, not acted on, unless asked
        with pytest.raises(DownloadError) as ei:
            fetch_bytes(s.url("/noai.png"), reject_directives={"noai"}, retries=0, **FAST)
        assert ei.value.reason == "noai"


# ------------------------------------------------------- the scrapers' map (scrape.download)
def _site() -> Server:
    return Server(
        {
            "/a.png": static(png((10, 20, 30))),
            "/b.png": static(png((40, 50, 60))),
            "/fake.jpg": static(b"<html><body>nope</body></html>", "image/jpeg"),
            "/page.html": page("<html></html>"),
        }
    )


def test_download_task_is_a_map_of_one_url_to_a_typed_outcome():
    cfg = ScrapeConfig(retries=0, backoff=0.05, connect_timeout=2, read_timeout=2)
    with _site() as s:
        ok = download_task(Task(url=s.url("/a.png"), label="car", source="test"), cfg)
        assert ok.image is not None and ok.reason == ""
        assert ok.image.sha256 == hashlib.sha256(png((10, 20, 30))).hexdigest()
        assert ok.image.file_name == ok.image.sha256[:HASH_PREFIX] + ".png"
        assert s.requests[-1][2]["User-Agent"] == cfg.user_agent  # its own session, with the scrape's User-Agent
        bad = download_task(Task(url=s.url("/missing.png"), label="car", source="test"), cfg)
        assert bad.image is None and bad.reason == "http_404"
        html = download_task(Task(url=s.url("/fake.jpg"), label="car", source="test"), cfg)
        assert html.image is None and html.reason == "html" and "HTML page" in html.detail
        refused = download_task(Task(url="ftp://127.0.0.1/x.png", label="car", source="test"), cfg)
        assert refused.reason == "unsupported_scheme"
        assert pickle.loads(pickle.dumps(ok)) == ok  # an outcome travels between processes / machines


def test_download_task_runs_through_an_executor_in_url_order():
    cfg = ScrapeConfig(retries=0, backoff=0.05, connect_timeout=2, read_timeout=2)
    with _site() as s:
        tasks = [Task(url=s.url(p), label="car", source="t") for p in ("/b.png", "/missing.png", "/a.png", "/fake.jpg")]
        got = list(LocalExecutor(3).map(functools.partial(download_task, cfg=cfg), tasks))
    assert [o.task for o in got] == tasks
    assert [o.reason for o in got] == ["", "http_404", "", "html"]
    assert got[0].image is not None and got[0].image.data == png((40, 50, 60))


def test_url_outcome_of_an_image_error():
    task = Task(url="http://x/a.png", label="car", source="t")
    out = UrlOutcome.of(task, DownloadError("http://x/a.png", "timeout", "slow"))
    assert (out.image, out.reason, out.detail) == (None, "timeout", "slow")


# ----------------------------------------------------- the manifest record (records.manifest)
def test_manifest_missing_corrupt_or_too_new_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no scrape manifest"):
        Manifest(tmp_path, lock=False)
    with pytest.raises(DataError, match="no scrape manifest"):
        file_provenance(tmp_path)

    (tmp_path / MANIFEST_NAME).write_bytes(b"this is not a database at all, " * 100)
    for open_it in (lambda: Manifest(tmp_path), lambda: Manifest(tmp_path, lock=False), lambda: summarize(tmp_path)):
        with pytest.raises(DataError, match="not a readable scrape manifest") as ei:
            open_it()
        assert MANIFEST_NAME in str(ei.value)  # and the lock was released: the next open gets the same error
    res = CliRunner().invoke(app, ["scrape", "status", str(tmp_path)])
    assert res.exit_code == 1 and "not a readable scrape manifest" in res.output and "Traceback" not in res.output

    newer = tmp_path / "newer"
    Manifest(newer).close()
    db = sqlite3.connect(newer / MANIFEST_NAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    for lock in (True, False):
        with pytest.raises(DataError, match=f"manifest schema {SCHEMA_VERSION + 1}"):
            Manifest(newer, lock=lock)


# ------------------------------------------------------------------------------ lightness
def test_imgclf_net_imports_no_requests_praw_or_stage():
    code = (
        "import sys, imgclf.net, imgclf.net.image, imgclf.net.safety, imgclf.net.fetch, imgclf.records.manifest\n"
        "bad = [m for m in ('requests', 'urllib3', 'praw', 'prawcore', 'tensorflow', 'imgclf.scrape', 'imgclf.predict')"
        " if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
