"""`imgclf scrape reddit|web|status`: images from subreddits and web pages into labelled folders."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

scrape_app = typer.Typer(
    name="scrape",
    help="Download images from Reddit or web pages into OUT/<label>/, with a resumable SQLite manifest.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class Sort(str, Enum):
    top = "top"
    hot = "hot"
    new = "new"
    rising = "rising"


class TimeFilter(str, Enum):
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"
    year = "year"
    all = "all"


_OUT_HELP = "Output folder: images go to OUT/<label>/, the manifest to OUT/_manifest.sqlite."


def _scrape_cfg(**values: object):
    from imgclf.config import ScrapeConfig, drop_none, validate

    return validate(ScrapeConfig, drop_none(values), origin="command line")


@scrape_app.command("reddit")
def reddit_cmd(
    subreddits: list[str] = typer.Argument(..., help="Subreddit names, e.g. carporn or r/carporn."),
    label: str = typer.Option(..., "--label", "-l", help="Class folder the images go to, e.g. car."),
    out: Path = typer.Option(Path("data/raw"), "--out", "-o", help=_OUT_HELP),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Posts listed per subreddit (Reddit caps a listing at ~1000). [default: 1000]"),
    sort: Optional[Sort] = typer.Option(None, "--sort", help="Listing order. [default: top]"),
    time_filter: Optional[TimeFilter] = typer.Option(None, "--time-filter", help="Period for --sort top. [default: all]"),
    nsfw: Optional[bool] = typer.Option(None, "--nsfw/--no-nsfw", help="Keep posts marked NSFW. [default: no]"),
    praw_site: Optional[str] = typer.Option(None, "--praw-site", help="praw.ini section with the credentials. [default: praw's DEFAULT]"),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Concurrent downloads. [default: 8]"),
    max_bytes: Optional[int] = typer.Option(None, "--max-bytes", help="Hard cap per download, in bytes. [default: 20000000]"),
    retries: Optional[int] = typer.Option(None, "--retries", help="Extra tries after a timeout, 429 or 5xx. [default: 5]"),
    connect_timeout: Optional[float] = typer.Option(None, "--connect-timeout", help="Seconds. [default: 10]"),
    read_timeout: Optional[float] = typer.Option(None, "--read-timeout", help="Seconds. [default: 30]"),
) -> None:
    """Download the images of subreddit posts (links, galleries, previews, crossposts) with praw.

    Credentials come from praw.ini (--praw-site section) or praw_client_id / praw_client_secret /
    praw_user_agent environment variables. Rerunning skips what is already done.

    Example: imgclf scrape reddit carporn --label car --out data/raw --limit 500
    """
    from imgclf.config import RedditSource, drop_none, validate
    from imgclf.scrape.reddit import scrape_reddit

    source = validate(RedditSource, drop_none(dict(
        subreddits=subreddits, label=label, limit=limit, sort=sort.value if sort else None,
        time_filter=time_filter.value if time_filter else None, nsfw=nsfw, praw_site=praw_site,
    )), origin="command line")
    cfg = _scrape_cfg(workers=workers, max_bytes=max_bytes, retries=retries, connect_timeout=connect_timeout,
                      read_timeout=read_timeout)
    scrape_reddit(source, out, cfg)


@scrape_app.command("web")
def web_cmd(
    urls: Optional[list[str]] = typer.Argument(None, help="Page or image URLs."),
    label: str = typer.Option(..., "--label", "-l", help="Class folder the images go to, e.g. car."),
    out: Path = typer.Option(Path("data/raw"), "--out", "-o", help=_OUT_HELP),
    urls_file: Optional[Path] = typer.Option(None, "--urls-file", help="Text file with one page or image URL per line."),
    depth: Optional[int] = typer.Option(None, "--depth", "-d", help="Link levels followed on the same site. [default: 0]"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Image URLs attempted at most (earlier runs count)."),
    max_pages: Optional[int] = typer.Option(None, "--max-pages", help="Pages fetched at most. [default: 200]"),
    delay: Optional[float] = typer.Option(None, "--delay", help="Seconds between requests to one host. [default: 1]"),
    user_agent: Optional[str] = typer.Option(None, "--user-agent", help="User-Agent sent, and matched in robots.txt."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Concurrent downloads. [default: 8]"),
    max_bytes: Optional[int] = typer.Option(None, "--max-bytes", help="Hard cap per download, in bytes. [default: 20000000]"),
    retries: Optional[int] = typer.Option(None, "--retries", help="Extra tries after a timeout, 429 or 5xx. [default: 5]"),
    connect_timeout: Optional[float] = typer.Option(None, "--connect-timeout", help="Seconds. [default: 10]"),
    read_timeout: Optional[float] = typer.Option(None, "--read-timeout", help="Seconds. [default: 30]"),
) -> None:
    """Download the images of web pages (img, srcset, data-src, links to images, og:image).

    Follows links on the same site up to --depth, obeys robots.txt, waits --delay seconds
    between requests to one host. Rerunning skips what is already done.

    Example: imgclf scrape web https://example.org/gallery --label car --out data/raw --depth 1
    """
    from imgclf.config import WebSource, drop_none, validate
    from imgclf.scrape.web import scrape_web

    source = validate(WebSource, drop_none(dict(
        urls=urls or None, urls_file=urls_file, label=label, depth=depth, limit=limit, max_pages=max_pages,
    )), origin="command line")
    cfg = _scrape_cfg(workers=workers, max_bytes=max_bytes, retries=retries, connect_timeout=connect_timeout,
                      read_timeout=read_timeout, delay=delay, user_agent=user_agent)
    scrape_web(source, out, cfg)


@scrape_app.command("status")
def status_cmd(
    folder: Path = typer.Argument(..., metavar="DIR", help="An --out folder of `imgclf scrape`."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Summarize a scrape manifest by label, source and reason.

    Example: imgclf scrape status data/raw
    """
    from rich.table import Table

    from imgclf.scrape.manifest import summarize
    from imgclf.ui import console

    st = summarize(folder)
    if as_json:
        typer.echo(json.dumps(st.to_dict(), indent=2))
        return
    statuses = ["kept", "skipped", "failed"]

    def table(title: str, key: str, rows: dict[str, dict[str, int]]) -> Table:
        t = Table(title=title, title_justify="left")
        t.add_column(key)
        for s in statuses:
            t.add_column(s, justify="right")
        if key == "label":
            t.add_column("files", justify="right")
        for name, counts in sorted(rows.items()):
            cells = [str(counts.get(s, 0)) for s in statuses]
            if key == "label":
                cells.append(str(st.files.get(name, 0)))
            t.add_row(name or "-", *cells)
        return t

    console.print(table("by label", "label", st.by_label))
    console.print(table("by source", "source", st.by_source))
    if st.by_reason:
        t = Table(title="skipped / failed by reason", title_justify="left")
        for c in ("status", "reason", "count"):
            t.add_column(c, justify="right" if c == "count" else "left")
        for (s, r), n in sorted(st.by_reason.items(), key=lambda kv: (kv[0][0], -kv[1])):
            t.add_row(s, r or "-", str(n))
        console.print(t)
    kept = sum(c.get("kept", 0) for c in st.by_label.values())
    console.print(f"{st.total} rows in {st.path}; {kept} images kept; last update {st.last_time or '-'}")


def register(app: typer.Typer) -> None:
    """Adds the `scrape` command group (`reddit`, `web`, `status`) to `app`."""
    app.add_typer(scrape_app, name="scrape")
