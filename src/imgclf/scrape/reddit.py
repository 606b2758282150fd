"""`imgclf scrape reddit`: images from subreddit listings into `<out>/<label>/`, built on praw.

The client (`imgclf.scrape.reddit_client`: credentials from praw.ini / `praw_*` variables,
prawcore's rate limiting and retries, `Retry-After` honoured) lists posts; what each post gives
is read from the listing's JSON by `imgclf.scrape.reddit_posts.post_images`. Self posts,
videos, removed or deleted posts and NSFW posts (unless `nsfw=True`) are skipped and counted;
every post is recorded in the manifest with the URLs it points at (`imgclf.records.manifest`),
skipped or not, and every image URL is handed to the `Runner`, whose pool runs the per-URL map
(`imgclf.scrape.download.download_task`).

**Several listings.** Reddit lists at most about 1,000 posts per listing (`LISTING_CAP`).
`RedditSource.sort`, `time_filter` and `search` name several listings of one subreddit
(`listings_for`): `top` once per time filter, `new`, `hot`, `rising`, and one search per query
and time filter. They are walked in turn; posts are deduplicated by id; a listing stops when
one page of it (`LISTING_PAGE`, 100 posts) in a row adds nothing new, when it ends, or when
`limit` unique posts are reached. With `new_only`, only `new` is walked and it stops at the
first post an earlier run recorded. The summary reports how many unique posts each listing
added.

When prawcore's retries are used up on 429s, the scrape stops with one message
(`ScrapeError`) after keeping what it has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imgclf.config import RedditSource, ScrapeConfig
from imgclf.errors import ScrapeError
from imgclf.net.urls import redact
from imgclf.scrape.download import Task
from imgclf.scrape.reddit_client import (
    CREDENTIALS_HINT,
    RetryAfterGate,
    access_token,
    configure_retries,
    make_reddit,
    secrets_of,
)
from imgclf.scrape.reddit_posts import post_images, post_record
from imgclf.scrape.runner import Runner, ScrapeSummary, check_label
from imgclf.ui import summary as print_summary

#: Reddit returns at most about this many posts for one listing (sort + time filter).
LISTING_CAP: int = 1000

#: Posts in one page of a listing (Reddit's largest page). A listing stops after this many
#: posts in a row that an earlier listing of the run already gave.
LISTING_PAGE: int = 100

_SUBREDDIT = re.compile(r"^[A-Za-z0-9_]{2,21}$")


def normalize_subreddit(name: str) -> str:
    """Returns a subreddit name without `r/`, `/r/` or a URL prefix; raises `ScrapeError` if invalid."""
    n = name.strip().rstrip("/")
    n = re.sub(r"^(https?://)?(www\.|old\.)?(reddit\.com)?/?r/", "", n)
    if not _SUBREDDIT.match(n):
        raise ScrapeError(f"{name!r} is not a subreddit name", "give names like carporn or r/carporn")
    return n


@dataclass(frozen=True)
class Listing:
    """One listing of a subreddit.

    Attributes:
        name: str. As reported, e.g. `"top/all"`, `"new"`, `"search 'red car'/year"`.
        sort: str. `"top"`, `"new"`, `"hot"`, `"rising"` or `"search"`.
        time_filter: str or None. For `top` and `search`.
        query: str or None. For `search`.
    """

    name: str
    sort: str
    time_filter: str | None = None
    query: str | None = None


def listings_for(source: RedditSource) -> list[Listing]:
    """The listings `source` walks for each subreddit, in order, without repeats.

    Args:
        source: RedditSource. `sort` (each of top, new, hot, rising), `time_filter` (each
            value gives one `top` listing and one listing per search query), `search`
            (queries, searched with Reddit's relevance order), `new_only`.

    Returns:
        list of Listing. With `new_only`: only `new`.

    Raises:
        ScrapeError: `new_only` together with an explicit `sort` other than `new` or a `search`.
    """
    if source.new_only:
        if ("sort" in source.model_fields_set and source.sort != ["new"]) or source.search:
            raise ScrapeError(
                "--new-only walks the 'new' listing only and cannot be combined with other --sort values or --search",
                "drop --sort / --search, or run without --new-only",
            )
        return [Listing("new", "new")]
    out: list[Listing] = []
    for sort in source.sort:
        if sort == "top":
            out += [Listing(f"top/{tf}", "top", tf) for tf in source.time_filter]
        else:
            out.append(Listing(sort, sort))
    for q in source.search:
        out += [Listing(f"search {q!r}/{tf}", "search", tf, q) for tf in source.time_filter]
    return list(dict.fromkeys(out))


def _generator(reddit: Any, sub: str, listing: Listing) -> Any:
    s = reddit.subreddit(sub)
    if listing.sort == "top":
        return s.top(time_filter=listing.time_filter, limit=None)
    if listing.sort == "search":
        return s.search(listing.query, sort="relevance", time_filter=listing.time_filter, limit=None)
    return getattr(s, listing.sort)(limit=None)


class _ListingFailed(Exception):
    def __init__(self, reason: str, detail: str, whole_subreddit: bool = False):
        super().__init__(detail)
        self.reason, self.detail, self.whole_subreddit = reason, detail, whole_subreddit


class _RateLimited(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _next_post(it: Any, sub: str, listing: Listing, tries: int) -> Any:
    """Next post of a listing (prawcore retries inside), None at the end; errors classified.

    Raises:
        ScrapeError: credentials refused (401 / OAuth error).
        _RateLimited: 429 after prawcore's retries (also from the token endpoint).
        _ListingFailed: the listing (or the whole subreddit) cannot go on.
    """
    import prawcore

    try:
        return next(it)
    except StopIteration:
        return None
    except (prawcore.OAuthException, prawcore.InvalidToken) as exc:
        raise ScrapeError(f"Reddit refused the credentials ({type(exc).__name__})", CREDENTIALS_HINT) from None
    except prawcore.ResponseException as exc:
        status = exc.response.status_code
        if status == 429:
            after = exc.response.headers.get("Retry-After") or exc.response.headers.get("x-ratelimit-reset")
            raise _RateLimited(
                f"r/{sub} {listing.name}: Reddit answered HTTP 429 Too Many Requests {tries} times "
                "in a row" + (f" (it asked to wait {after} s)" if after else "")
            ) from None
        if status == 401:
            raise ScrapeError(
                f"Reddit refused the credentials (HTTP 401 from {urlsplit(exc.response.url).hostname or ''})",
                CREDENTIALS_HINT,
            ) from None
        if status == 403 or isinstance(exc, prawcore.Forbidden):
            raise _ListingFailed(
                "subreddit_forbidden", f"r/{sub}: HTTP 403 (private or banned subreddit)", True
            ) from None
        if status in (404, 302) or isinstance(exc, (prawcore.Redirect, prawcore.NotFound)):
            raise _ListingFailed("subreddit_not_found", f"r/{sub}: no such subreddit (HTTP {status})", True) from None
        raise _ListingFailed(
            f"listing_http_{status}",
            f"r/{sub} {listing.name}: HTTP {status} after {tries} tries; the other listings go on",
        ) from None
    except prawcore.RequestException as exc:
        raise _ListingFailed(
            "listing_connection_error",
            f"r/{sub} {listing.name}: {type(exc.original_exception).__name__} after {tries} tries",
        ) from None


def _handle_post(post: Any, sub: str, label: str, nsfw: bool, runner: Runner, listing: str) -> None:
    d = vars(post)  # the listing's data only: reading a missing attribute would make praw fetch the post
    found = post_images(d, nsfw)
    pid = str(d.get("id"))
    permalink = f"https://www.reddit.com{d['permalink']}" if d.get("permalink") else f"reddit:{pid}"
    invalid = [f"{permalink}#{mid}" for mid in found.invalid_items]
    urls = [redact(u, runner.secrets) for u in found.urls] + invalid
    parent_id = None
    if found.parent is not None:
        parent_id = str(d.get("crosspost_parent") or "").removeprefix("t3_") or str(found.parent.get("id"))
    runner.manifest.record_post(post_record(d, sub, label, listing, found.skip, parent_id), urls)
    if found.parent is not None:  # the crossposted post points at the same images
        runner.manifest.record_post(
            post_record(found.parent, sub, label, f"crosspost parent of {pid}", found.skip), urls
        )
    if found.skip:
        runner.skip_post(found.skip)
        return
    for url in invalid:
        if runner.mark_seen(url, label):
            runner.skip(
                Task(url=url, label=label, source=f"r/{sub}"),
                "gallery_item_invalid",
                "gallery item whose media_metadata status is not 'valid'",
            )
    for url in found.urls:
        runner.submit(Task(url=url, label=label, source=f"r/{sub}"))


@dataclass
class _RedditWalk:
    """One `scrape_reddit` run: walks each subreddit's listings and hands every new post on.

    Posts are deduplicated by id over all listings of the run (`seen`); `known` holds the
    posts an earlier run recorded (`new_only`). `rate_limited` is set, with the message, when
    Reddit still answers 429 after prawcore's retries: the walk then stops.
    """

    source: RedditSource
    label: str
    reddit: Any
    runner: Runner
    listings: list[Listing]
    secrets: list[str]
    tries: int
    known: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    rate_limited: str | None = None
    subreddit_failed: bool = False

    def run(self, subs: list[str]) -> None:
        """Walks every subreddit in turn, until done or rate-limited."""
        for sub in subs:
            if self.rate_limited:
                break
            self.walk_subreddit(sub)

    def walk_subreddit(self, sub: str) -> None:
        """Walks the listings of `sub` until `limit` unique posts, then notes Reddit's listing cap if hit."""
        limit = self.source.limit
        if limit > LISTING_CAP and len(self.listings) == 1:
            self.runner.note(
                f"r/{sub}: Reddit lists at most ~{LISTING_CAP} posts per listing; --limit {limit} "
                f"needs several listings: --sort all, or lists of --sort / --time-filter / --search"
            )
        unique = 0
        capped = False
        for listing in self.listings:
            if unique >= limit:
                break
            self.subreddit_failed = False
            unique, report = self.walk_listing(sub, listing, unique)
            ended = report["stopped"] == "end of listing"
            capped = capped or (ended and report["listed"] >= LISTING_CAP - LISTING_PAGE)
            if self.rate_limited or self.subreddit_failed:
                break
        self.runner.summary.posts += unique
        if capped and unique < limit and not self.rate_limited:
            n = sum(1 for r in self.runner.summary.listings if r["subreddit"] == sub)
            self.runner.note(
                f"r/{sub}: a listing ended after ~{LISTING_CAP} posts (Reddit's listing cap); "
                f"{unique} unique posts from {n} "
                f"listings. For more, add listings (--sort all, --time-filter, --search) and run again: "
                f"the manifest skips what you already have"
            )

    def walk_listing(self, sub: str, listing: Listing, unique: int) -> tuple[int, dict[str, Any]]:
        """Walks one listing; returns the subreddit's unique post count after it and the listing's report."""
        report: dict[str, Any] = {"subreddit": sub, "listing": listing.name, "listed": 0, "new": 0, "stopped": ""}
        self.runner.summary.listings.append(report)
        it = iter(_generator(self.reddit, sub, listing))
        streak = 0
        while (post := self._next(it, sub, listing, report)) is not None:
            report["listed"] += 1
            pid = str(vars(post).get("id"))
            if self.source.new_only and pid in self.known:
                report["stopped"] = f"reached post {pid}, recorded by an earlier run"
                break
            if pid in self.seen:
                streak += 1
                if streak >= LISTING_PAGE:
                    report["stopped"] = f"{LISTING_PAGE} posts in a row already seen"
                    break
                continue
            streak = 0
            self.seen.add(pid)
            report["new"] += 1
            unique += 1
            _handle_post(post, sub, self.label, self.source.nsfw, self.runner, listing.name)
            self.runner.poll()
            if unique >= self.source.limit:
                report["stopped"] = f"limit of {self.source.limit} posts reached"
                break
        return unique, report

    def _next(self, it: Any, sub: str, listing: Listing, report: dict[str, Any]) -> Any:
        """The listing's next post, or None when it stops (`report["stopped"]` says why)."""
        try:
            post = _next_post(it, sub, listing, self.tries)
        except _RateLimited as exc:
            report["stopped"] = "HTTP 429"
            self.rate_limited = exc.detail
            return None
        except _ListingFailed as exc:
            failed = self.runner.summary.failed
            failed[exc.reason] = failed.get(exc.reason, 0) + 1
            self.runner.note(exc.detail)
            report["stopped"] = exc.reason
            self.subreddit_failed = exc.whole_subreddit
            return None
        except ScrapeError as exc:
            token = access_token(self.reddit)
            raise ScrapeError(redact(exc.message, self.secrets + ([token] if token else [])), exc.hint) from None
        if post is None:
            report["stopped"] = "end of listing"
        return post


def _finish(summary: ScrapeSummary, rate_limited: str | None) -> None:
    """Prints each listing's line and the summary; raises if Reddit's rate limit stopped the run."""
    for r in summary.listings:
        print_summary(
            f"  r/{r['subreddit']} {r['listing']}: {r['listed']} posts listed, {r['new']} new ({r['stopped']})"
        )
    print_summary(summary.line("scrape reddit"))
    if rate_limited:
        raise ScrapeError(
            f"{rate_limited}; stopped after {summary.posts} unique posts ({summary.kept} images kept, all recorded)",
            "wait for Reddit's rate-limit window to pass (a few minutes), then run the same command again: "
            "the manifest skips what is done",
        )


def scrape_reddit(source: RedditSource, out: Path, cfg: ScrapeConfig, *, reddit: Any = None) -> ScrapeSummary:
    """Downloads the images of subreddit listings into `out/<label>/`, recording every post and URL.

    Args:
        source: RedditSource. `subreddits`, `label`, `limit` (unique posts per subreddit, over
            all its listings), `sort` (`top`, `hot`, `new`, `rising`; several allowed),
            `time_filter` (for `top` and `search`; several allowed), `search` (queries),
            `new_only`, `nsfw`, `praw_site`. See `listings_for` and the module docstring.
        out: Path. Output folder; images land in `out/<label>/<sha256[:16]><ext>`, the manifest
            in `out/_manifest.sqlite`.
        cfg: ScrapeConfig. Downloader settings (`workers`, `max_bytes`, timeouts, `url_budget`,
            `respect_noai`...); `retries` and `backoff` also configure prawcore's retries.
        reddit: praw.Reddit or None. An instance from `make_reddit`; None builds one.

    Returns:
        ScrapeSummary: kept, skipped and failed counts by reason; `listings` (unique posts each
        listing added), `posts`; notes (listing cap, failed listings...).

    Raises:
        ScrapeError: no or refused credentials, an invalid subreddit name or label, `new_only`
            with other listings, another scrape writing to `out`, or Reddit still answering 429
            after prawcore's retries (what was collected until then is kept and recorded).
    """
    label = check_label(source.label)
    subs = [normalize_subreddit(s) for s in source.subreddits]
    if not subs:
        raise ScrapeError("no subreddit given", "e.g. imgclf scrape reddit carporn --label car")
    listings = listings_for(source)
    gate = RetryAfterGate()
    if reddit is None:
        reddit = make_reddit(source.praw_site, retries=cfg.retries, backoff=cfg.backoff, gate=gate)
    configured = configure_retries(reddit, cfg.retries, cfg.backoff)
    secrets = secrets_of(reddit)
    runner = Runner(Path(out), cfg, f"scrape r/{'+r/'.join(subs)}", total=None, secrets=secrets)
    gate.on_wait = runner.note
    if not configured:
        runner.note(
            "this prawcore version has no retry settings imgclf knows: prawcore's defaults apply "
            "(2 retries, HTTP 429 not retried); --retries affects downloads only"
        )
    walk = _RedditWalk(source, label, reddit, runner, listings, secrets, tries=cfg.retries + 1)
    try:
        if source.new_only:
            walk.known = runner.manifest.known_posts(label)
        walk.run(subs)
        summary = runner.close()
    except BaseException:  # Ctrl-C or a bug: stop the pool without waiting, then let it through
        runner.abort()
        raise
    _finish(summary, walk.rate_limited)
    return summary
