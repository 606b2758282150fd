"""`scrape reddit` with REAL praw talking to a fake Reddit (OAuth token + listing JSON) on 127.0.0.1,
configured through a praw.ini in the test's working directory."""

from __future__ import annotations

import sqlite3

import praw.config
import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.config import RedditSource, ScrapeConfig
from imgclf.errors import ScrapeError
from imgclf.scrape.reddit import post_images, scrape_reddit
from scrape_servers import TOKEN, praw_ini, reddit_server

CLIENT_ID = "test-client-id"
SECRET = "SECRET-never-show-9b1c"
CFG = ScrapeConfig(workers=3, delay=0, retries=2, backoff=0.05, connect_timeout=2, read_timeout=2)


@pytest.fixture
def clean_praw_env(tmp_path, monkeypatch):
    """A working directory of our own, no praw_* variables, no user praw.ini, praw's ini cache reset."""
    monkeypatch.chdir(tmp_path)
    for var in ("praw_client_id", "praw_client_secret", "praw_user_agent", "praw_site", "praw_password",
                "praw_username", "praw_refresh_token"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PRAW_ALLOW_ENDPOINT_OVERRIDE", "1")
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)  # praw caches praw.ini per process
    return tmp_path


@pytest.fixture
def fake_reddit(clean_praw_env):
    with reddit_server(CLIENT_ID, SECRET) as srv:
        praw_ini(clean_praw_env / "praw.ini", srv.base, CLIENT_ID, SECRET)
        yield srv


def manifest_rows(out):
    db = sqlite3.connect(out / "_manifest.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM attempts")]
    finally:
        db.close()


def test_post_images_rules():
    assert post_images({"is_self": True}).skip == "self_post"
    assert post_images({"over_18": True, "url": "https://i.redd.it/a.jpg"}).skip == "nsfw"
    assert post_images({"over_18": True, "url": "https://i.redd.it/a.jpg"}, nsfw=True).urls == ["https://i.redd.it/a.jpg"]
    assert post_images({"url": "https://i.imgur.com/x.gifv"}).skip == "video"
    assert post_images({"url": "https://www.reddit.com/r/x/", "selftext": "[deleted]", "author": None}).skip == "removed"
    assert post_images({"url": "https://i.imgur.com/abc"}).urls == ["https://i.imgur.com/abc"]  # direct host
    got = post_images({"url": "https://example.org/story",
                       "preview": {"images": [{"source": {"url": "https://preview.redd.it/p.jpg?a=1&amp;b=2"}}]}})
    assert got.urls == ["https://preview.redd.it/p.jpg?a=1&b=2"] and got.via == "preview"


def test_scrape_reddit_with_real_praw(fake_reddit, clean_praw_env):
    srv = fake_reddit
    out = clean_praw_env / "raw"
    src = RedditSource(subreddits=["r/cars"], label="car", limit=50)
    s = scrape_reddit(src, out, CFG)

    assert s.kept == 6, s  # a.jpg, 2 gallery items, crosspost, preview, extension-less image
    assert s.skipped == {"gallery_item_invalid": 1, "self_post": 1, "removed": 1, "nsfw": 1, "video": 1,
                         "duplicate_content": 1}, s.skipped
    assert s.failed == {"html": 1}, s.failed
    paths = srv.paths()
    assert sum(p.startswith("/api/v1/access_token") for p in paths) == 1
    listing = [p for p in paths if p.startswith("/r/cars/")]
    assert len(listing) == 3 and "after=t3_p7" in listing[-1]  # 429 retried, then two pages
    assert not any("/comments/" in p for p in paths)  # no lazy per-post fetch
    assert srv.hits["/i/removed.png"] == 0 and srv.hits["/i/nsfw.png"] == 0
    assert srv.hits["/news/article.html"] == 0  # a page link with a preview: the preview is used
    assert len(list((out / "car").iterdir())) == 6

    rows = {r["url"]: r for r in manifest_rows(out)}
    a = rows[srv.url("/i/a.jpg")]
    assert (a["source"], a["post_id"], a["title"], a["author"]) == ("r/cars", "p1", "post p1", "user_p1")
    assert a["permalink"] == "https://www.reddit.com/r/cars/comments/p1/post_p1/" and a["status"] == "kept"
    assert rows[srv.url("/i/g1.png?w=16&s=abc")]["status"] == "kept"  # &amp; unescaped
    assert rows[srv.url("/i/cross.png")]["post_id"] == "p3"
    assert rows[srv.url("/news/nopreview.html")]["reason"] == "html"
    assert rows["https://v.redd.it/abc123"]["reason"] == "video"

    # Secrets never land in the manifest.
    blob = (out / "_manifest.sqlite").read_bytes()
    assert SECRET.encode() not in blob and TOKEN.encode() not in blob

    # Rerun: nothing downloaded again; with --nsfw the NSFW post is now kept.
    before = dict(srv.hits)
    s2 = scrape_reddit(src.model_copy(update={"nsfw": True}), out, CFG)
    assert s2.kept == 1 and s2.skipped["already_done"] == 8, s2
    assert srv.hits["/i/a.jpg"] == before["/i/a.jpg"] and srv.hits["/i/nsfw.png"] == 1


def test_cli_reddit_no_secrets_in_output(fake_reddit, clean_praw_env):
    res = CliRunner().invoke(app, ["scrape", "reddit", "cars", "private", "--label", "car", "--out", "raw",
                                   "--limit", "20", "--retries", "2", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "6 kept" in res.output and "subreddit_forbidden" in res.output
    assert SECRET not in res.output and TOKEN not in res.output


def test_listing_cap_is_reported(fake_reddit, clean_praw_env):
    s = scrape_reddit(RedditSource(subreddits=["huge"], label="x", limit=1200), clean_praw_env / "raw", CFG)
    assert s.skipped == {"self_post": 1000}
    notes = " ".join(s.notes)
    assert "at most ~1000" in notes and "listing ended after 1000 posts" in notes


def test_no_credentials_one_clear_message(clean_praw_env):
    res = CliRunner().invoke(app, ["scrape", "reddit", "carporn", "--label", "car", "--out", "raw"])
    assert res.exit_code == 1
    assert "Reddit credentials not found" in res.output and "praw_client_id" in res.output and "DEFAULT section" in res.output and "praw.ini" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(app, ["scrape", "reddit", "carporn", "--label", "car", "--praw-site", "nosuch"])
    assert res.exit_code == 1 and "'nosuch'" in res.output


def test_credentials_from_env_and_wrong_secret(clean_praw_env, monkeypatch):
    with reddit_server(CLIENT_ID, SECRET, listing_429_first=False) as srv:
        (clean_praw_env / "praw.ini").write_text(f"[local]\noauth_url={srv.base}\nreddit_url={srv.base}\n")
        monkeypatch.setenv("praw_client_id", CLIENT_ID)
        monkeypatch.setenv("praw_user_agent", "imgclf-tests")
        monkeypatch.setenv("praw_client_secret", "WRONG-secret-value-42")
        src = RedditSource(subreddits=["cars"], label="car", limit=5, praw_site="local")
        with pytest.raises(ScrapeError) as ei:
            scrape_reddit(src, clean_praw_env / "raw", CFG)
        assert "refused the credentials" in str(ei.value) and "WRONG-secret-value-42" not in str(ei.value)
        monkeypatch.setenv("praw_client_secret", SECRET)
        assert scrape_reddit(src, clean_praw_env / "raw", CFG).kept >= 1
