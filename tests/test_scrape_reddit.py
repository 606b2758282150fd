"""`scrape reddit` with REAL praw talking to a fake Reddit (OAuth token + listing JSON) on 127.0.0.1,
configured through a praw.ini in the test's working directory: posts and their images, every post
in the manifest (shared URLs, reposts, crossposts), prawcore's retries (429 storms, Retry-After, 5xx)."""

from __future__ import annotations

import itertools
import sqlite3

import praw.config
import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.config import RedditSource, ScrapeConfig
from imgclf.errors import ScrapeError
from imgclf.records.manifest import file_provenance
from imgclf.scrape.reddit import scrape_reddit
from imgclf.scrape.reddit_posts import post_images
from scrape_servers import TOKEN, praw_ini, reddit_server

CLIENT_ID = "test-client-id"
SECRET = "SECRET-never-show-9b1c"
CFG = ScrapeConfig(workers=3, delay=0, retries=2, backoff=0.05, connect_timeout=2, read_timeout=2)


@pytest.fixture
def clean_praw_env(tmp_path, monkeypatch):
    """A working directory of our own, no praw_* variables, no user praw.ini, praw's ini cache reset."""
    monkeypatch.chdir(tmp_path)
    for var in (
        "praw_client_id",
        "praw_client_secret",
        "praw_user_agent",
        "praw_site",
        "praw_password",
        "praw_username",
        "praw_refresh_token",
    ):
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


def manifest_rows(out, table="attempts"):
    db = sqlite3.connect(out / "_manifest.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(f"SELECT * FROM {table}")]
    finally:
        db.close()


def test_post_images_rules():
    assert post_images({"is_self": True}).skip == "self_post"
    assert post_images({"over_18": True, "url": "https://i.redd.it/a.jpg"}).skip == "nsfw"
    assert post_images({"over_18": True, "url": "https://i.redd.it/a.jpg"}, nsfw=True).urls == [
        "https://i.redd.it/a.jpg"
    ]
    assert post_images({"url": "https://i.imgur.com/x.gifv"}).skip == "video"
    assert (
        post_images({"url": "https://www.reddit.com/r/x/", "selftext": "[deleted]", "author": None}).skip == "removed"
    )
    assert post_images({"url": "https://i.imgur.com/abc"}).urls == ["https://i.imgur.com/abc"]  # direct host
    # A skipped NSFW / removed post still names its image (recorded as provenance, not downloaded).
    removed = post_images({"url": "https://i.redd.it/a.jpg", "removed_by_category": "moderator"})
    assert removed.skip == "removed" and removed.urls == ["https://i.redd.it/a.jpg"]
    cross = post_images(
        {"url": "/r/x/comments/1/", "crosspost_parent_list": [{"id": "o1", "url": "https://i.redd.it/o.png"}]}
    )
    assert cross.urls == ["https://i.redd.it/o.png"] and cross.parent["id"] == "o1" and cross.skip is None
    got = post_images(
        {
            "url": "https://example.org/story",
            "preview": {"images": [{"source": {"url": "https://preview.redd.it/p.jpg?a=1&amp;b=2"}}]},
        }
    )
    assert got.urls == ["https://preview.redd.it/p.jpg?a=1&b=2"] and got.via == "preview"


def test_scrape_reddit_with_real_praw(fake_reddit, clean_praw_env):
    srv = fake_reddit
    out = clean_praw_env / "raw"
    src = RedditSource(subreddits=["r/cars"], label="car", limit=50)
    s = scrape_reddit(src, out, CFG)

    assert s.kept == 6, s  # a.jpg, 2 gallery items, crosspost, preview, extension-less image
    assert s.skipped == {
        "gallery_item_invalid": 1,
        "self_post": 1,
        "removed": 1,
        "nsfw": 1,
        "video": 1,
        "duplicate_content": 1,
    }, s.skipped
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
    assert a["permalink"] == "https://www.reddit.com/r/cars/comments/p1/post_p1/"
    # p9 links a byte-identical copy: whichever download completes first is stored (the downloads
    # run on 3 workers, so under load either may), the other is a duplicate_content skip naming it
    copy = rows[srv.url("/i/a-copy.jpg")]
    assert sorted([a["status"], copy["status"]]) == ["kept", "skipped"], (a["status"], copy["status"])
    dup = copy if copy["status"] == "skipped" else a
    assert dup["reason"] == "duplicate_content" and a["path"] == copy["path"] and a["sha256"] == copy["sha256"]
    assert rows[srv.url("/i/g1.png?w=16&s=abc")]["status"] == "kept"  # &amp; unescaped
    assert rows[srv.url("/i/cross.png")]["post_id"] == "p3"
    assert rows[srv.url("/news/nopreview.html")]["reason"] == "html"
    posts = {r["post_id"]: r for r in manifest_rows(out, "posts")}
    assert (posts["p7"]["status"], posts["p7"]["reason"]) == ("skipped", "video")
    assert posts["p3"]["crosspost_parent"] == "x1" and posts["x1"]["subreddit"] == "othersub"
    assert posts["x1"]["listing"] == "crosspost parent of p3" and posts["p1"]["listing"] == "top/all"
    assert len(posts) == 12  # 11 listed + the crossposted parent

    # Secrets never land in the manifest.
    blob = (out / "_manifest.sqlite").read_bytes()
    assert SECRET.encode() not in blob and TOKEN.encode() not in blob

    # Rerun: nothing downloaded again; with --nsfw the NSFW post is now kept.
    before = dict(srv.hits)
    s2 = scrape_reddit(src.model_copy(update={"nsfw": True}), out, CFG)
    assert s2.kept == 1 and s2.skipped["already_done"] == 8, s2
    assert srv.hits["/i/a.jpg"] == before["/i/a.jpg"] and srv.hits["/i/nsfw.png"] == 1


def test_cli_reddit_no_secrets_in_output(fake_reddit, clean_praw_env):
    res = CliRunner().invoke(
        app,
        [
            "scrape",
            "reddit",
            "cars",
            "private",
            "--label",
            "car",
            "--out",
            "raw",
            "--limit",
            "20",
            "--retries",
            "2",
            "--workers",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "6 kept" in res.output and "subreddit_forbidden" in res.output
    assert SECRET not in res.output and TOKEN not in res.output


def test_listing_cap_is_reported(fake_reddit, clean_praw_env):
    s = scrape_reddit(RedditSource(subreddits=["huge"], label="x", limit=1200), clean_praw_env / "raw", CFG)
    assert s.skipped == {"self_post": 1000} and s.posts == 1000
    notes = " ".join(s.notes)
    assert "at most ~1000" in notes and "--sort all" in notes and "listing ended after ~1000 posts" in notes
    assert s.listings == [
        {"subreddit": "huge", "listing": "top/all", "listed": 1000, "new": 1000, "stopped": "end of listing"}
    ]


def test_posts_sharing_a_url_are_all_recorded_and_never_refetched(fake_reddit, clean_praw_env):
    """Removed + kept + repost + crosspost of one image, and removed + page + repost of one HTML
    link: every post is recorded with its URL, the URL's status is the download's, and three runs
    make one request per URL (the issue's replay gave 1 -> 2 -> 3)."""
    srv = fake_reddit
    out = clean_praw_env / "raw"
    src = RedditSource(subreddits=["shared"], label="car")
    img, html_page = srv.url("/i/shared.jpg"), srv.url("/news/shared.html")
    for run in range(3):
        s = scrape_reddit(src, out, CFG)
        if run == 0:
            assert s.kept == 1 and s.failed == {"html": 1} and s.skipped == {"removed": 2}, s
        else:
            assert s.kept == 0 and s.failed == {} and s.skipped == {"removed": 2, "already_done": 2}, s
        assert srv.hits["/i/shared.jpg"] == 1 and srv.hits["/news/shared.html"] == 1
    urls = {r["url"]: r for r in manifest_rows(out, "urls")}
    assert (urls[img]["status"], urls[img]["reason"]) == ("kept", "")  # not overwritten by s1's removal
    assert (urls[html_page]["status"], urls[html_page]["reason"]) == ("failed", "html")
    links = manifest_rows(out, "post_urls")
    assert sorted(r["post_id"] for r in links if r["url"] == img) == ["s1", "s2", "s3", "s4"]
    assert sorted(r["post_id"] for r in links if r["url"] == html_page) == ["s5", "s6", "s7"]
    posts = {r["post_id"]: r for r in manifest_rows(out, "posts")}
    assert (posts["s1"]["status"], posts["s1"]["reason"]) == ("skipped", "removed")
    assert posts["s4"]["crosspost_parent"] == "s2" and posts["s3"]["title"] == "repost of s2"
    assert posts["s2"]["permalink"] == "https://www.reddit.com/r/shared/comments/s2/post_s2/"
    assert all(p["author"] == f"user_{pid}" and p["subreddit"] == "shared" for pid, p in posts.items())

    # A new post pointing at the settled image: recorded, no request.
    from scrape_servers import _post

    srv.subs["shared"].append(_post("s8", "shared", url=img, title="third repost"))
    s = scrape_reddit(src, out, CFG)
    assert srv.hits["/i/shared.jpg"] == 1 and s.kept == 0
    assert "s8" in {r["post_id"] for r in manifest_rows(out, "post_urls") if r["url"] == img}

    # The reader of the manifest: one file, every post that pointed at it.
    prov = file_provenance(out)
    assert len(prov) == 1
    (fp,) = prov.values()
    assert fp.urls == [img] and sorted(p["post_id"] for p in fp.posts) == ["s1", "s2", "s3", "s4", "s8"]


@pytest.mark.parametrize("sub,header", [("storm", "Retry-After"), ("storm_reset", "x-ratelimit-reset")])
def test_429_storm_prawcore_retries_once_then_one_clear_message(fake_reddit, clean_praw_env, sub, header):
    srv = fake_reddit
    cfg = CFG.model_copy(update={"retries": 2})
    with pytest.raises(ScrapeError) as ei:
        scrape_reddit(RedditSource(subreddits=[sub], label="car"), clean_praw_env / "raw", cfg)
    msg = str(ei.value)
    assert "429 Too Many Requests 3 times" in msg and "run the same command again" in msg
    times = srv.times[f"/r/{sub}/top"]
    assert len(times) == 3  # prawcore's loop only: 1 try + 2 retries, no loop of ours around it
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.9  # the server's wait (1 s) was honoured


def test_429_storm_in_the_cli_is_one_line_not_a_traceback(fake_reddit, clean_praw_env):
    res = CliRunner().invoke(app, ["scrape", "reddit", "storm", "--label", "car", "--out", "raw", "--retries", "1"])
    assert res.exit_code == 1
    assert "error:" in res.output and "429" in res.output and "Traceback" not in res.output
    assert len(fake_reddit.listing_requests("storm")) == 2


def test_5xx_retried_by_prawcore_as_configured(fake_reddit, clean_praw_env):
    srv = fake_reddit
    srv.flaky_failures = 2
    s = scrape_reddit(RedditSource(subreddits=["flaky"], label="car"), clean_praw_env / "a", CFG)  # retries=2
    assert len(srv.listing_requests("flaky")) == 3 and s.posts == 7
    srv.flaky_failures = 10**6
    s = scrape_reddit(
        RedditSource(subreddits=["flaky", "cars"], label="car"),
        clean_praw_env / "b",
        CFG.model_copy(update={"retries": 1}),
    )
    assert len(srv.listing_requests("flaky")) == 3 + 2  # 1 try + 1 retry, nothing nested
    assert s.failed.get("listing_http_503") == 1 and s.kept == 6  # r/cars still scraped
    assert any("r/flaky top/all: HTTP 503 after 2 tries" in n for n in s.notes)


def test_no_credentials_one_clear_message(clean_praw_env):
    res = CliRunner().invoke(app, ["scrape", "reddit", "carporn", "--label", "car", "--out", "raw"])
    assert res.exit_code == 1
    assert (
        "Reddit credentials not found" in res.output
        and "praw_client_id" in res.output
        and "DEFAULT section" in res.output
        and "praw.ini" in res.output
    )
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
