"""`imgclf scrape reddit`: images from subreddit listings into `<out>/<label>/`, built on praw.

Credentials and endpoints come the praw way (praw reads them, not us): a `praw.ini` file (the
current folder, then `~/.config/praw.ini`; the section is `praw_site`, default `DEFAULT`) and
`praw_*` environment variables (`praw_client_id`, `praw_client_secret`, `praw_user_agent`...).
A read-only "script" app is enough: https://www.reddit.com/prefs/apps.

Which images a post gives (`post_images`), reading only the listing's own JSON (never an
attribute the listing may lack, which would make praw fetch the post again, one request each):

- crosspost: the first entry of `crosspost_parent_list` is used instead of the post (both
  posts are recorded, the crosspost with its `crosspost_parent`);
- gallery: `gallery_data.items` in order, each looked up in `media_metadata`; items whose
  `status` is not `"valid"` are skipped and counted (`gallery_item_invalid`);
- a direct image link (`i.redd.it`, `i.imgur.com`, `preview.redd.it`, or a path ending in an
  image extension): that URL;
- another link with a `preview`: Reddit's preview image (`preview.images[0].source.url`);
- another link without a preview: the URL itself; the downloader keeps it only if its
  content turns out to be an image.

Self posts, videos, removed or deleted posts and NSFW posts (unless `nsfw=True`) are skipped
and counted; every post is recorded in the manifest with the URLs it points at
(`imgclf.records.manifest`), skipped or not.

**Several listings.** Reddit lists at most about 1,000 posts per listing (`LISTING_CAP`).
`RedditSource.sort`, `time_filter` and `search` name several listings of one subreddit
(`listings_for`): `top` once per time filter, `new`, `hot`, `rising`, and one search per query
and time filter. They are walked in turn; posts are deduplicated by id; a listing stops when
one page of it (`LISTING_PAGE`, 100 posts) in a row adds nothing new, when it ends, or when
`limit` unique posts are reached. With `new_only`, only `new` is walked and it stops at the
first post an earlier run recorded. The summary reports how many unique posts each listing
added.

**Rate limits and retries are prawcore's, configured once** (`make_reddit`): prawcore paces
requests from Reddit's `x-ratelimit-*` headers and retries connection errors and 5xx; we set
how many times (`ScrapeConfig.retries`), its backoff (exponential with equal jitter, base
`ScrapeConfig.backoff`) and add 429 to the statuses it retries. prawcore has no wait for
`Retry-After`, nor for `x-ratelimit-reset` on a 429 without `x-ratelimit-remaining`: our
requestor (praw's documented `requestor_class` hook) holds the next request until the time
such an answer gave. There is no retry loop of our own. When prawcore's retries are used up on
429s, the scrape stops with one message (`ScrapeError`) after keeping what it has.
"""

from __future__ import annotations

import configparser
import html
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imgclf.config import RedditSource, ScrapeConfig
from imgclf.errors import ScrapeError
from imgclf.images import IMAGE_EXTENSIONS
from imgclf.net.budget import MAX_RETRY_WAIT, retry_wait
from imgclf.net.urls import redact
from imgclf.records.manifest import PostRecord
from imgclf.scrape.download import Task
from imgclf.scrape.runner import Runner, ScrapeSummary, check_label
from imgclf.ui import summary as print_summary

#: Reddit returns at most about this many posts for one listing (sort + time filter).
LISTING_CAP: int = 1000

#: Posts in one page of a listing (Reddit's largest page). A listing stops after this many
#: posts in a row that an earlier listing of the run already gave.
LISTING_PAGE: int = 100

#: Hosts whose links are images themselves.
DIRECT_IMAGE_HOSTS: frozenset[str] = frozenset({"i.redd.it", "i.imgur.com", "preview.redd.it", "i.reddituploads.com"})

#: Hosts and extensions of video links (skipped as `video`).
VIDEO_HOSTS: frozenset[str] = frozenset(
    {
        "v.redd.it",
        "youtube.com",
        "www.youtube.com",
        "youtu.be",
        "gfycat.com",
        "redgifs.com",
        "www.redgifs.com",
        "streamable.com",
    }
)
VIDEO_EXTENSIONS: frozenset[str] = frozenset({".gifv", ".mp4", ".webm", ".mov", ".m3u8"})

_SUBREDDIT = re.compile(r"^[A-Za-z0-9_]{2,21}$")

CREDENTIALS_HINT = (
    "create a 'script' app at https://www.reddit.com/prefs/apps, then put client_id, client_secret "
    "and user_agent in the DEFAULT section (or the --praw-site section) of praw.ini in this folder "
    "or ~/.config/praw.ini, or set the environment variables praw_client_id, praw_client_secret "
    "and praw_user_agent (see docs/scraping.md)"
)


@dataclass
class PostImages:
    """What one post gives: image URLs, and the reason it is skipped if it is.

    Attributes:
        urls: list of str. The image URLs the post points at (also for a skipped NSFW or
            removed post, so the manifest records them; they are not downloaded then).
        skip: str or None. Post-level skip reason: `"nsfw"`, `"removed"`, `"self_post"`,
            `"video"`, `"no_image"`.
        invalid_items: list of str. Gallery media ids whose status is not `valid`.
        via: str. `"link"`, `"gallery"`, `"preview"`, `"page"`, `"crosspost+..."`.
        parent: dict or None. The crossposted post's JSON (`crosspost_parent_list[0]`).
    """

    urls: list[str] = field(default_factory=list)
    skip: str | None = None
    invalid_items: list[str] = field(default_factory=list)
    via: str = ""
    parent: dict[str, Any] | None = None


def normalize_subreddit(name: str) -> str:
    """Returns a subreddit name without `r/`, `/r/` or a URL prefix; raises `ScrapeError` if invalid."""
    n = name.strip().rstrip("/")
    n = re.sub(r"^(https?://)?(www\.|old\.)?(reddit\.com)?/?r/", "", n)
    if not _SUBREDDIT.match(n):
        raise ScrapeError(f"{name!r} is not a subreddit name", "give names like carporn or r/carporn")
    return n


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _ext(url: str) -> str:
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    return path[dot:] if dot > path.rfind("/") else ""


def is_direct_image(url: str) -> bool:
    """True if `url` itself is an image (known image host or image extension)."""
    return _host(url) in DIRECT_IMAGE_HOSTS or _ext(url) in IMAGE_EXTENSIONS


def _is_removed(d: dict[str, Any]) -> bool:
    if d.get("removed_by_category") or d.get("banned_by") or d.get("removal_reason"):
        return True
    author = d.get("author")
    deleted_author = author is None or str(author) == "[deleted]"
    return deleted_author and d.get("selftext") in ("[removed]", "[deleted]")


def _gallery(d: dict[str, Any]) -> PostImages:
    items = ((d.get("gallery_data") or {}).get("items")) or []
    meta = d.get("media_metadata") or {}
    out = PostImages(via="gallery")
    for item in items:
        mid = item.get("media_id")
        m = meta.get(mid) or {}
        src = m.get("s") or {}
        url = src.get("u") or src.get("gif")
        if m.get("status") != "valid" or not url:
            out.invalid_items.append(str(mid))
            continue
        out.urls.append(html.unescape(url))
    if not out.urls and not out.invalid_items:
        out.skip = "no_image"
    return out


def post_images(d: dict[str, Any], nsfw: bool = False) -> PostImages:
    """Finds the images of one post from its listing JSON.

    Args:
        d: dict. The post's data as the listing gave it (`vars(submission)` or a
            `crosspost_parent_list` entry); nothing else is fetched.
        nsfw: bool, default False. Keep posts marked over 18.

    Returns:
        PostImages: `urls` the post points at and, if it is not to be downloaded, `skip`, one
        of `"nsfw"`, `"removed"`, `"self_post"`, `"video"`, `"no_image"` (NSFW and removed
        first, also when a crossposted parent is); `invalid_items` lists gallery items that
        are not valid; `parent` the crossposted post.
    """
    skip = "nsfw" if d.get("over_18") and not nsfw else "removed" if _is_removed(d) else None
    parents = d.get("crosspost_parent_list") or []
    if parents and isinstance(parents[0], dict):
        inner = post_images(parents[0], nsfw)
        inner.via = "crosspost+" + inner.via
        inner.parent = parents[0]
        inner.skip = skip or inner.skip
        return inner
    if d.get("is_self"):
        return PostImages(skip=skip or "self_post")
    if d.get("is_gallery") or d.get("gallery_data"):
        out = _gallery(d)
        out.skip = skip or out.skip
        return out
    url = html.unescape(str(d.get("url_overridden_by_dest") or d.get("url") or ""))
    if (
        d.get("is_video")
        or str(d.get("post_hint", "")).endswith("video")
        or _host(url) in VIDEO_HOSTS
        or _ext(url) in VIDEO_EXTENSIONS
    ):
        return PostImages(skip=skip or "video")
    if url and is_direct_image(url):
        return PostImages(urls=[url], via="link", skip=skip)
    images = ((d.get("preview") or {}).get("images")) or []
    preview = ((images[0] or {}).get("source") or {}).get("url") if images else None
    if preview:
        return PostImages(urls=[html.unescape(preview)], via="preview", skip=skip)
    if url.startswith(("http://", "https://")):
        return PostImages(urls=[url], via="page", skip=skip)
    return PostImages(skip=skip or "no_image")


# ------------------------------------------------------------------------- praw / prawcore
class RetryAfterGate:
    """Holds the next Reddit request until the time a 429 / 5xx answer asked for.

    prawcore paces requests from `x-ratelimit-remaining` / `x-ratelimit-reset` on normal
    answers, but ignores `Retry-After` (RFC 9110 §10.2.3) and a 429's `x-ratelimit-reset`
    without `x-ratelimit-remaining`. The gate reads them (`imgclf.net.budget.retry_wait`,
    capped at `MAX_RETRY_WAIT` seconds) and sleeps before the next request, so prawcore's own
    retry of that request waits as long as Reddit asked. Thread-safe.

    Args:
        on_wait: callable(str) or None. Told once per wait, e.g. to print a warning.
    """

    def __init__(self, on_wait: Callable[[str], None] | None = None):
        self.on_wait = on_wait
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.last_status: int | None = None
        self.last_wait: float = 0.0

    def before(self) -> None:
        """Sleeps until a request may be sent."""
        with self._lock:
            delay = self._not_before - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def after(self, response: Any) -> None:
        """Reads a response's `Retry-After` / `x-ratelimit-reset` when it is a 429 or 5xx."""
        status = getattr(response, "status_code", 200)
        self.last_status = status
        if status != 429 and status < 500:
            return
        headers = response.headers
        if headers.get("Retry-After") is None and headers.get("x-ratelimit-reset") is None:
            return
        wait = retry_wait(headers, 0, 0.0)
        self.last_wait = wait
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + wait)
        if self.on_wait is not None and wait > 0:
            self.on_wait(
                f"Reddit answered HTTP {status}; the next request waits {wait:.1f} s as it asked"
                + (f" (capped at {MAX_RETRY_WAIT:g} s)" if wait >= MAX_RETRY_WAIT else "")
            )


def _requestor_class() -> type:
    import prawcore

    class GatedRequestor(prawcore.Requestor):
        """prawcore's Requestor with a `RetryAfterGate` around every request."""

        def __init__(self, *args: Any, gate: RetryAfterGate | None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.gate = gate or RetryAfterGate()

        def request(self, *args: Any, **kwargs: Any) -> Any:
            self.gate.before()
            response = super().request(*args, **kwargs)
            self.gate.after(response)
            return response

    return GatedRequestor


def _retry_strategy(retries: int, backoff: float) -> type:
    """A prawcore `RetryStrategy` class: `retries` retries, equal-jitter exponential backoff."""
    from prawcore.sessions import RetryStrategy

    @dataclass(frozen=True)
    class ImgclfRetries(RetryStrategy):
        left: int = retries

        def _sleep_seconds(self) -> float | None:
            used = retries - self.left
            return None if used <= 0 else retry_wait(None, used - 1, backoff)

        def consume_available_retry(self) -> ImgclfRetries:
            return type(self)(left=self.left - 1)

        def should_retry_on_failure(self) -> bool:
            return self.left > 0

    return ImgclfRetries


def configure_retries(reddit: Any, retries: int, backoff: float = 1.0) -> bool:
    """Sets prawcore's retries of every session of `reddit`: count, backoff, and 429 retried.

    prawcore (2.4 to 4.0) has no public setting for either: its `Session` keeps the retry
    strategy class in `_retry_strategy_class` and the statuses it retries in
    `RETRY_STATUSES`; both are set on the instances.

    Args:
        reddit: praw.Reddit.
        retries: int. Extra tries after a connection error, 429 or 5xx (0 = none).
        backoff: float, default 1.0. Base of the exponential backoff, in seconds.

    Returns:
        bool: False if this prawcore lacks those attributes (its defaults then apply:
        2 retries, 429 not retried).
    """
    from prawcore.sessions import Session

    strategy = _retry_strategy(retries, backoff)
    cores = [getattr(reddit, n, None) for n in ("_core", "_read_only_core", "_authorized_core")]
    done = False
    core: Any  # private attributes of prawcore's Session, set on the instance
    for core in {id(c): c for c in cores if isinstance(c, Session)}.values():
        if not hasattr(core, "_retry_strategy_class"):
            continue
        core._retry_strategy_class = strategy
        core.RETRY_STATUSES = frozenset(Session.RETRY_STATUSES) | {429}
        done = True
    return done


def make_reddit(
    praw_site: str | None = None, *, retries: int = 2, backoff: float = 1.0, gate: RetryAfterGate | None = None
) -> Any:
    """Creates a read-only `praw.Reddit` from praw.ini / `praw_*` environment variables.

    Rate limiting and retries are prawcore's, configured here once (see the module docstring).

    Args:
        praw_site: str or None. praw.ini section; None lets praw choose (`praw_site`
            environment variable, else `DEFAULT`).
        retries: int, default 2. prawcore's retries after a connection error, 429 or 5xx.
        backoff: float, default 1.0. Base of their exponential backoff, in seconds.
        gate: RetryAfterGate or None. Honours `Retry-After`; None makes one.

    Returns:
        praw.Reddit.

    Raises:
        ScrapeError: if the section does not exist or client_id / client_secret / user_agent
            are missing (one message saying how to set them).
    """
    import praw
    from praw.exceptions import MissingRequiredAttributeException

    try:
        reddit = praw.Reddit(
            site_name=praw_site,
            check_for_updates=False,
            check_for_async=False,
            requestor_class=_requestor_class(),
            requestor_kwargs={"gate": gate or RetryAfterGate()},
        )
    except configparser.NoSectionError:
        raise ScrapeError(f"praw.ini has no section named {praw_site!r} (from --praw-site)", CREDENTIALS_HINT) from None
    except MissingRequiredAttributeException as exc:
        m = re.search(r"setting '(\w+)' missing", str(exc))
        what = m.group(1) if m else "client_id / client_secret / user_agent"
        raise ScrapeError(f"Reddit credentials not found: {what} is not set", CREDENTIALS_HINT) from None
    reddit.read_only = True
    configure_retries(reddit, retries, backoff)
    return reddit


def _secrets(reddit: Any) -> list[str]:
    c = reddit.config
    vals = [getattr(c, k, None) for k in ("client_secret", "password", "refresh_token")]
    return [v for v in vals if isinstance(v, str) and v]


def _token(reddit: Any) -> str | None:
    """The current OAuth access token (to redact it from messages), read without a request."""
    try:
        return reddit._core._authorizer.access_token
    except AttributeError:
        return None


# ------------------------------------------------------------------------------- listings
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
                f"Reddit refused the credentials (HTTP 401 from {_host(exc.response.url)})", CREDENTIALS_HINT
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


def _post_record(
    d: dict[str, Any], sub: str, label: str, listing: str, skip: str | None, crosspost_parent: str | None = None
) -> PostRecord:
    author = d.get("author")
    permalink = d.get("permalink")
    created = d.get("created_utc")
    return PostRecord(
        post_id=str(d.get("id")),
        label=label,
        subreddit=str(d.get("subreddit") or sub),
        permalink=f"https://www.reddit.com{permalink}" if permalink else None,
        title=d.get("title"),
        author=None if author is None else str(author),
        crosspost_parent=crosspost_parent,
        created_utc=float(created) if isinstance(created, (int, float)) else None,
        listing=listing,
        status="skipped" if skip else "taken",
        reason=skip,
    )


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
    runner.manifest.record_post(_post_record(d, sub, label, listing, found.skip, parent_id), urls)
    if found.parent is not None:  # the crossposted post points at the same images
        runner.manifest.record_post(
            _post_record(found.parent, sub, label, f"crosspost parent of {pid}", found.skip), urls
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
            token = _token(self.reddit)
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
    secrets = _secrets(reddit)
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
