"""The manifest: a schema-1 manifest (one `attempts` table keyed by URL) migrated in place,
atomically, with a backup; a rerun on it makes no request for what it had settled."""

from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.config import ScrapeConfig, WebSource
from imgclf.errors import ScrapeError
from imgclf.records.manifest import BACKUP_V1_NAME, SCHEMA_VERSION, Manifest, summarize
from imgclf.scrape.web import scrape_web
from scrape_servers import Server, png, static

# The schema imgclf wrote before manifest schema 2, as it was.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, url TEXT NOT NULL, label TEXT NOT NULL, kind TEXT NOT NULL, source TEXT,
    post_id TEXT, title TEXT, author TEXT, permalink TEXT, final_url TEXT, status TEXT NOT NULL,
    reason TEXT, detail TEXT, bytes INTEGER, sha256 TEXT, width INTEGER, height INTEGER, path TEXT,
    time TEXT NOT NULL, UNIQUE (url, label));
CREATE INDEX IF NOT EXISTS attempts_sha256 ON attempts (sha256);
"""
COLS = (
    "url",
    "label",
    "kind",
    "source",
    "post_id",
    "title",
    "author",
    "permalink",
    "final_url",
    "status",
    "reason",
    "detail",
    "bytes",
    "sha256",
    "width",
    "height",
    "path",
    "time",
)


def write_v1(out, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(out / "_manifest.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V1_SCHEMA)
    for r in rows:
        db.execute(
            f"INSERT INTO attempts ({', '.join(COLS)}) VALUES ({', '.join('?' * len(COLS))})", [r.get(c) for c in COLS]
        )
    db.commit()
    db.close()


def v1_rows(base: str) -> list[dict]:
    t = "2025-01-01T00:00:00+00:00"
    perm = "https://www.reddit.com/r/cars/comments/{}/x/"
    return [
        dict(
            url=f"{base}/a.png",
            label="car",
            kind="image",
            source="r/cars",
            post_id="p1",
            title="a car",
            author="alice",
            permalink=perm.format("p1"),
            final_url=f"{base}/a.png",
            status="kept",
            reason="",
            bytes=70,
            sha256="ab" * 32,
            width=16,
            height=12,
            path="car/abababababababab.png",
            time=t,
        ),
        dict(
            url=f"{base}/page.html",
            label="car",
            kind="image",
            source="r/cars",
            post_id="p2",
            title="html",
            author="bob",
            permalink=perm.format("p2"),
            status="failed",
            reason="html",
            time=t,
        ),
        dict(
            url=f"{base}/nsfw.png",
            label="car",
            kind="post",
            source="r/cars",
            post_id="p3",
            title="nsfw",
            author="carol",
            permalink=perm.format("p3"),
            status="skipped",
            reason="nsfw",
            time=t,
        ),
        dict(
            url=perm.format("p4"),
            label="car",
            kind="post",
            source="r/cars",
            post_id="p4",
            title="self",
            permalink=perm.format("p4"),
            status="skipped",
            reason="self_post",
            time=t,
        ),
        dict(
            url=f"{base}/flaky.png",
            label="car",
            kind="image",
            source=f"{base}/index.html",
            status="failed",
            reason="timeout",
            time=t,
        ),
        dict(
            url=f"{base}/index.html",
            label="car",
            kind="page",
            source=f"{base}/index.html",
            status="crawled",
            reason="",
            time=t,
        ),
    ]


def test_v1_manifest_is_migrated_in_place_with_a_backup(tmp_path):
    base = "http://127.0.0.1:9"
    write_v1(tmp_path, v1_rows(base))
    (tmp_path / "car").mkdir()
    (tmp_path / "car" / "abababababababab.png").write_bytes(png((1, 1, 1)))

    with Manifest(tmp_path) as m:
        assert m.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert m.is_settled(f"{base}/a.png", "car") and m.is_settled(f"{base}/page.html", "car")
        assert not m.is_settled(f"{base}/flaky.png", "car")  # a timeout is tried again
        posts = {r["post_id"]: dict(r) for r in m.db.execute("SELECT * FROM posts")}
        assert set(posts) == {"p1", "p2", "p3", "p4"}
        assert (posts["p1"]["status"], posts["p1"]["subreddit"], posts["p1"]["author"]) == ("taken", "cars", "alice")
        assert (posts["p3"]["status"], posts["p3"]["reason"]) == ("skipped", "nsfw")
        assert [r["post_id"] for r in m.posts_for_url(f"{base}/nsfw.png", "car")] == ["p3"]  # the post's link kept
        assert (
            m.posts_for_url(perm := "https://www.reddit.com/r/cars/comments/p4/x/", "car") == []
        )  # not its own permalink
        assert m.get(perm, "car") is None  # a post-level skip is no URL row
        kinds = dict(m.db.execute("SELECT url, kind FROM urls").fetchall())
        assert kinds == {
            f"{base}/a.png": "image",
            f"{base}/page.html": "image",
            f"{base}/flaky.png": "image",
            f"{base}/index.html": "page",
        }
        old_query = m.db.execute("SELECT label, author, permalink FROM attempts WHERE status='kept'").fetchall()
        assert [tuple(r) for r in old_query] == [("car", "alice", "https://www.reddit.com/r/cars/comments/p1/x/")]

    backup = sqlite3.connect(tmp_path / BACKUP_V1_NAME)
    assert backup.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 6  # the old file, untouched
    backup.close()
    before = (tmp_path / BACKUP_V1_NAME).read_bytes()
    Manifest(tmp_path).close()  # opening again migrates nothing and keeps the backup as it was
    assert (tmp_path / BACKUP_V1_NAME).read_bytes() == before


def test_status_of_a_v1_manifest_migrates_it(tmp_path):
    write_v1(tmp_path, v1_rows("http://127.0.0.1:9"))
    res = CliRunner().invoke(app, ["scrape", "status", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    st = summarize(tmp_path)
    assert st.posts == {"car": 4} and st.by_reason[("skipped", "nsfw")] == 1 and st.by_reason[("failed", "html")] == 1
    assert (tmp_path / BACKUP_V1_NAME).is_file()


def test_rerun_on_a_migrated_manifest_requests_only_what_was_not_settled(tmp_path):
    with Server(
        {
            "/robots.txt": static(b"", "text/plain"),
            "/a.png": static(png((1, 1, 1))),
            "/flaky.png": static(png((2, 2, 2))),
            "/page.html": static(b"<html></html>", "text/html"),
        }
    ) as s:
        write_v1(tmp_path, v1_rows(s.base))
        (tmp_path / "car").mkdir()
        (tmp_path / "car" / "abababababababab.png").write_bytes(png((1, 1, 1)))
        urls = [s.url("/a.png"), s.url("/page.html"), s.url("/flaky.png")]
        got = scrape_web(WebSource(urls=urls, label="car"), tmp_path, ScrapeConfig(delay=0, retries=0))
        assert got.kept == 1 and got.skipped == {"already_done": 2}
        assert s.hits["/a.png"] == 0 and s.hits["/page.html"] == 0 and s.hits["/flaky.png"] == 1


def test_failed_migration_leaves_the_old_manifest_as_it_was(tmp_path):
    """The migration is one SQLite transaction: when it fails (here a stray `urls` table of
    another shape), the file still has schema 1 and all its rows, and the error says so."""
    write_v1(tmp_path, v1_rows("http://127.0.0.1:9"))
    db = sqlite3.connect(tmp_path / "_manifest.sqlite")
    db.execute("CREATE TABLE urls (something TEXT)")
    db.commit()
    db.close()
    with pytest.raises(ScrapeError) as ei:
        Manifest(tmp_path)
    assert "_manifest.sqlite" in str(ei.value) and "unchanged" in str(ei.value)
    db = sqlite3.connect(tmp_path / "_manifest.sqlite")
    assert db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 6
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()
    with pytest.raises(ScrapeError):  # and the lock was released: a second try gets the same clear error
        Manifest(tmp_path)
