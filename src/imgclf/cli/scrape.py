"""`imgclf scrape reddit|web|status`: images from subreddits and web pages into labelled folders."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imgclf.cli.core import ImgclfTyper
from imgclf.cli.engine_options import engine_config, engine_opt, ray_address_opt, stage_executor
from imgclf.cli.options import opt, plain_opt
from imgclf.config import RedditSource, ScrapeConfig, WebSource, stage_config
from imgclf.ui import console

scrape_app = ImgclfTyper(
    name="scrape",
    help="Download images from Reddit or web pages into OUT/<label>/, with a resumable SQLite manifest.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


_OUT_HELP = "Output folder: images go to OUT/<label>/, the manifest to OUT/_manifest.sqlite."


def _scrape_cfg(**values: object) -> ScrapeConfig:
    """The `scrape:` settings from the options given (the others keep their defaults)."""
    return stage_config(ScrapeConfig, "scrape", None, **values)


# The options of `imgclf scrape reddit` and `imgclf scrape web`, in the order --help shows them;
# each stage option defaults to None and its help shows the config field's default.
_LABEL = plain_opt(..., "--label", "-l", help="Class folder the images go to, e.g. car.")
_OUT = plain_opt(Path("data/raw"), "--out", "-o", help=_OUT_HELP)
_WORKERS = opt(ScrapeConfig, "workers", "--workers", "-w", help="Concurrent downloads.")
_MAX_BYTES = opt(ScrapeConfig, "max_bytes", "--max-bytes", help="Hard cap per download, in bytes.")
_CONNECT_TIMEOUT = opt(ScrapeConfig, "connect_timeout", "--connect-timeout", help="Seconds to establish a connection.")
_READ_TIMEOUT = opt(ScrapeConfig, "read_timeout", "--read-timeout", help="Seconds to wait for each piece of an answer.")

# only `scrape reddit`
_REDDIT_LIMIT = opt(
    RedditSource,
    "limit",
    "--limit",
    "-n",
    help="Unique posts per subreddit, over all its listings (one listing gives at most ~1000).",
)
_REDDIT_SORT = opt(
    RedditSource,
    "sort",
    "--sort",
    help="Listings to walk: top, new, hot, rising, a comma list (top,new) or all "
    "(every order and, by default, top for all,year,month,week,day).",
)
_REDDIT_TIME_FILTER = opt(
    RedditSource,
    "time_filter",
    "--time-filter",
    help="Periods for top and --search: hour, day, week, month, year, all, or a comma list.",
)
_REDDIT_SEARCH = opt(
    RedditSource,
    "search",
    "--search",
    metavar="QUERY",
    help="Also walk the subreddit's search results for QUERY (repeat for more queries), "
    "one listing per --time-filter value.",
)
_REDDIT_NEW_ONLY = opt(
    RedditSource,
    "new_only",
    "--new-only/--no-new-only",
    help="Walk only the new listing and stop at the first post an earlier run recorded "
    "(fetches what was posted since).",
)
_REDDIT_NSFW = opt(RedditSource, "nsfw", "--nsfw/--no-nsfw", help="Keep posts marked NSFW.")
_REDDIT_PRAW_SITE = opt(RedditSource, "praw_site", "--praw-site", help="praw.ini section with the credentials.")
_REDDIT_RETRIES = opt(
    ScrapeConfig,
    "retries",
    "--retries",
    help="Extra tries after a timeout, connection error, 429 or 5xx (downloads, and prawcore's for Reddit's API).",
)
_REDDIT_URL_BUDGET = opt(
    ScrapeConfig,
    "url_budget",
    "--url-budget",
    help="Seconds one image URL may take in all: every try, redirect and wait.",
)
_REDDIT_RESPECT_NOAI = opt(
    ScrapeConfig,
    "respect_noai",
    "--respect-noai/--ignore-noai",
    help="Skip images whose server sends X-Robots-Tag noai or noimageai (the site "
    "asks that they not be used for AI training); --ignore-noai takes them anyway.",
)


@scrape_app.command("reddit")
def reddit_cmd(
    subreddits: list[str] = typer.Argument(..., help="Subreddit names, e.g. carporn or r/carporn."),
    label: str = _LABEL,
    out: Path = _OUT,
    limit: int | None = _REDDIT_LIMIT,
    sort: str | None = _REDDIT_SORT,
    time_filter: str | None = _REDDIT_TIME_FILTER,
    search: list[str] | None = _REDDIT_SEARCH,
    new_only: bool | None = _REDDIT_NEW_ONLY,
    nsfw: bool | None = _REDDIT_NSFW,
    praw_site: str | None = _REDDIT_PRAW_SITE,
    workers: int | None = _WORKERS,
    max_bytes: int | None = _MAX_BYTES,
    retries: int | None = _REDDIT_RETRIES,
    connect_timeout: float | None = _CONNECT_TIMEOUT,
    read_timeout: float | None = _READ_TIMEOUT,
    url_budget: float | None = _REDDIT_URL_BUDGET,
    respect_noai: bool | None = _REDDIT_RESPECT_NOAI,
) -> None:
    """Download the images of subreddit posts (links, galleries, previews, crossposts) with praw.

    Credentials come from praw.ini (--praw-site section) or praw_client_id / praw_client_secret /
    praw_user_agent environment variables. Rerunning skips what is already done.

    Example: imgclf scrape reddit carporn --label car --out data/raw --limit 3000 --sort all
    """
    from imgclf.scrape.reddit import scrape_reddit

    source = stage_config(
        RedditSource,
        "source.reddit",
        None,
        subreddits=subreddits,
        label=label,
        limit=limit,
        sort=sort,
        time_filter=time_filter,
        search=search or None,
        new_only=new_only,
        nsfw=nsfw,
        praw_site=praw_site,
    )
    cfg = _scrape_cfg(
        workers=workers,
        max_bytes=max_bytes,
        retries=retries,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        url_budget=url_budget,
        respect_noai=respect_noai,
    )
    scrape_reddit(source, out, cfg)


# only `scrape web`
_WEB_URLS_FILE = opt(WebSource, "urls_file", "--urls-file", help="Text file with one page or image URL per line.")
_WEB_DEPTH = opt(WebSource, "depth", "--depth", "-d", help="Link levels followed on the same site.")
_WEB_LIMIT = opt(WebSource, "limit", "--limit", "-n", help="Image URLs attempted at most (earlier runs count).")
_WEB_MAX_PAGES = opt(WebSource, "max_pages", "--max-pages", help="Pages fetched at most.")
_WEB_DELAY = opt(ScrapeConfig, "delay", "--delay", help="Seconds between requests to one host.")
_WEB_USER_AGENT = opt(
    ScrapeConfig, "user_agent", "--user-agent", help="User-Agent sent; its first word is matched in robots.txt."
)
_WEB_RETRIES = opt(
    ScrapeConfig, "retries", "--retries", help="Extra tries after a timeout, connection error, 429 or 5xx."
)
_WEB_URL_BUDGET = opt(
    ScrapeConfig,
    "url_budget",
    "--url-budget",
    help="Seconds one URL (page, image, robots.txt) may take in all: every try, redirect and wait.",
)
_WEB_RESPECT_NOAI = opt(
    ScrapeConfig,
    "respect_noai",
    "--respect-noai/--ignore-noai",
    help="Skip images the site marks noai or noimageai (X-Robots-Tag, or "
    "<meta name=robots> on the page): it asks that they not be used for AI "
    "training; --ignore-noai takes them anyway.",
)


@scrape_app.command("web")
def web_cmd(
    urls: list[str] | None = typer.Argument(None, help="Page or image URLs."),
    label: str = _LABEL,
    out: Path = _OUT,
    urls_file: Path | None = _WEB_URLS_FILE,
    depth: int | None = _WEB_DEPTH,
    limit: int | None = _WEB_LIMIT,
    max_pages: int | None = _WEB_MAX_PAGES,
    delay: float | None = _WEB_DELAY,
    user_agent: str | None = _WEB_USER_AGENT,
    workers: int | None = _WORKERS,
    max_bytes: int | None = _MAX_BYTES,
    retries: int | None = _WEB_RETRIES,
    connect_timeout: float | None = _CONNECT_TIMEOUT,
    read_timeout: float | None = _READ_TIMEOUT,
    url_budget: float | None = _WEB_URL_BUDGET,
    respect_noai: bool | None = _WEB_RESPECT_NOAI,
    engine: str | None = engine_opt(),
    ray_address: str | None = ray_address_opt(),
) -> None:
    """Download the images of web pages (img, srcset, data-src, links to images, og:image).

    Follows links on the same site up to --depth, obeys robots.txt (RFC 9309: an unreachable
    robots.txt keeps the whole site out for the run), waits --delay seconds between requests
    to one host. Rerunning skips what is already done.

    Example: imgclf scrape web https://example.org/gallery --label car --out data/raw --depth 1
    """
    from imgclf.scrape.web import scrape_web

    source = stage_config(
        WebSource,
        "source.web",
        None,
        urls=urls or None,
        urls_file=urls_file,
        label=label,
        depth=depth,
        limit=limit,
        max_pages=max_pages,
    )
    cfg = _scrape_cfg(
        workers=workers,
        max_bytes=max_bytes,
        retries=retries,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        delay=delay,
        user_agent=user_agent,
        url_budget=url_budget,
        respect_noai=respect_noai,
    )
    # with --engine ray, each host's image URLs are downloaded by one worker (the driver writes the files)
    with stage_executor(engine_config(None, engine, ray_address)) as executor:
        scrape_web(source, out, cfg, executor=executor)


@scrape_app.command("status")
def status_cmd(
    folder: Path = typer.Argument(..., metavar="DIR", help="An --out folder of `imgclf scrape`."),
    as_json: bool = plain_opt(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Summarize a scrape manifest by label, source and reason.

    Example: imgclf scrape status data/raw
    """
    from rich.table import Table

    from imgclf.records.manifest import summarize

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
    posts = sum(st.posts.values())
    if posts:
        console.print(f"{posts} Reddit posts recorded; {st.shared_urls} URLs pointed at by more than one post")
    console.print(f"{st.total} rows in {st.path}; {kept} images kept; last update {st.last_time or '-'}")


def register(app: typer.Typer) -> None:
    """Adds the `scrape` command group (`reddit`, `web`, `status`) to `app`."""
    app.add_typer(scrape_app, name="scrape")
