"""Past Reddit's 1,000-post cap: real praw walks several listings of a loopback Reddit whose
`r/pool` serves 1,000 posts per listing from a pool of 3,000; posts deduplicated by id, a
listing that brings nothing new stops after one page, `--new-only` stops at the first known post."""

from __future__ import annotations

import sqlite3

import praw.config
import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.config import RedditSource, ScrapeConfig
from imgclf.errors import ScrapeError
from imgclf.scrape.reddit import LISTING_PAGE, listings_for, scrape_reddit
from scrape_servers import PoolReddit, add_fresh, praw_ini

CLIENT_ID = "pool-client-id"
SECRET = "SECRET-pool-4d2e"
CFG = ScrapeConfig(workers=4, delay=0, retries=1, backoff=0.05, connect_timeout=2, read_timeout=2)


@pytest.fixture
def pool(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("praw_client_id", "praw_client_secret", "praw_user_agent", "praw_site"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PRAW_ALLOW_ENDPOINT_OVERRIDE", "1")
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)
    with PoolReddit(CLIENT_ID, SECRET) as srv:
        praw_ini(tmp_path / "praw.ini", srv.base, CLIENT_ID, SECRET)
        yield srv


def post_ids(out) -> list[str]:
    db = sqlite3.connect(out / "_manifest.sqlite")
    try:
        return [r[0] for r in db.execute("SELECT post_id FROM posts")]
    finally:
        db.close()


def test_listings_for_expands_sort_all_and_lists():
    names = [x.name for x in listings_for(RedditSource(subreddits=["a"], label="x", sort="all"))]
    assert names == ["top/all", "top/year", "top/month", "top/week", "top/day", "new", "hot", "rising"]
    src = RedditSource(subreddits=["a"], label="x", sort="top,new", time_filter="all,week", search=["red car"])
    assert [x.name for x in listings_for(src)] == [
        "top/all",
        "top/week",
        "new",
        "search 'red car'/all",
        "search 'red car'/week",
    ]
    assert [x.name for x in listings_for(RedditSource(subreddits=["a"], label="x", new_only=True))] == ["new"]
    with pytest.raises(ScrapeError, match="new-only"):
        listings_for(RedditSource(subreddits=["a"], label="x", new_only=True, sort="top"))


def test_sort_all_collects_more_than_1000_unique_posts(pool, tmp_path):
    out = tmp_path / "raw"
    s = scrape_reddit(RedditSource(subreddits=["pool"], label="x", sort="all", limit=5000), out, CFG)
    served = set()
    for ids in pool.served.values():
        served |= set(ids)
    ids = post_ids(out)
    assert len(ids) == len(set(ids)) == s.posts == len(served)  # every post once, none missed
    assert s.posts > 1000
    by_name = {r["listing"]: r for r in s.listings}
    assert by_name["top/all"]["new"] == 1000 and by_name["top/all"]["stopped"] == "end of listing"
    assert sum(r["new"] for r in s.listings) == s.posts
    # hot lists exactly what top/all did: it stops after one page instead of walking all ten.
    assert by_name["hot"] == {
        "subreddit": "pool",
        "listing": "hot",
        "listed": LISTING_PAGE,
        "new": 0,
        "stopped": f"{LISTING_PAGE} posts in a row already seen",
    }
    assert len(pool.listing_requests("pool", "hot")) == 1
    assert len(pool.listing_requests("pool", "top")) == 5 * 10
    images = sum(1 for i in served if int(i[1:]) % 10 == 0)
    assert s.kept == images and len(list((out / "x").iterdir())) == images


def test_limit_counts_unique_posts_and_search_is_a_listing(pool, tmp_path):
    src = RedditSource(subreddits=["pool"], label="x", sort="top", time_filter="all", search=["red"], limit=1500)
    s = scrape_reddit(src, tmp_path / "raw", CFG)
    assert s.posts == 1500 and len(post_ids(tmp_path / "raw")) == 1500
    assert [r["listing"] for r in s.listings] == ["top/all", "search 'red'/all"]
    assert s.listings[1]["stopped"] == "limit of 1500 posts reached" and s.listings[1]["new"] == 500
    assert pool.listing_requests("pool", "search")


def test_new_only_stops_at_the_first_known_post(pool, tmp_path):
    out = tmp_path / "raw"
    first = scrape_reddit(RedditSource(subreddits=["pool"], label="x", sort="new"), out, CFG)
    assert first.posts == 1000
    fresh = add_fresh(pool, 5)
    before = len(pool.listing_requests("pool", "new"))
    again = scrape_reddit(RedditSource(subreddits=["pool"], label="x", new_only=True), out, CFG)
    assert again.posts == 5 and set(fresh) <= set(post_ids(out))
    assert again.listings[0]["listed"] == 6 and again.listings[0]["stopped"].startswith("reached post q2999")
    assert len(pool.listing_requests("pool", "new")) - before == 1  # one page, not ten


def test_cli_lists_of_sorts_and_time_filters(pool, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "scrape",
            "reddit",
            "pool",
            "--label",
            "x",
            "--out",
            str(tmp_path / "raw"),
            "--sort",
            "top,rising",
            "--time-filter",
            "all,year",
            "--limit",
            "1200",
            "--workers",
            "4",
            "--retries",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    for name in ("top/all", "top/year"):
        assert f"r/pool {name}: " in res.output
    assert "r/pool rising" not in res.output  # the limit was reached before it
    assert len(post_ids(tmp_path / "raw")) == 1200
