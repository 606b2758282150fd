"""`imgclf scrape reddit`: images from subreddit listings into `<out>/<label>/`, built on praw.

Credentials and endpoints come the praw way (praw reads them, not us): a `praw.ini` file (the
current folder, then `~/.config/praw.ini`; the section is `praw_site`, default `DEFAULT`) and
`praw_*` environment variables (`praw_client_id`, `praw_client_secret`, `praw_user_agent`...).
A read-only "script" app is enough: https://www.reddit.com/prefs/apps.

Which images a post gives (`post_images`), reading only the listing's own JSON (never an
attribute the listing may lack, which would make praw fetch the post again, one request each):

- crosspost: the first entry of `crosspost_parent_list` is used instead of the post;
- gallery: `gallery_data.items` in order, each looked up in `media_metadata`; items whose
  `status` is not `"valid"` are skipped and counted (`gallery_item_invalid`);
- a direct image link (`i.redd.it`, `i.imgur.com`, `preview.redd.it`, or a path ending in an
  image extension): that URL;
- another link with a `preview`: Reddit's preview image (`preview.images[0].source.url`);
- another link without a preview: the URL itself; the downloader keeps it only if its
  content turns out to be an image.

Self posts, videos, removed or deleted posts and NSFW posts (unless `nsfw=True`) are skipped
and counted. Reddit lists at most about 1,000 posts per listing (`LISTING_CAP`); when a listing
ends there, a note says so.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imgclf.config import RedditSource, ScrapeConfig
from imgclf.errors import ScrapeError
from imgclf.images import IMAGE_EXTENSIONS
from imgclf.scrape.download import redact, retry_wait
from imgclf.scrape.runner import Runner, ScrapeSummary, Task, check_label

#: Reddit returns at most about this many posts for one listing (sort + time filter).
LISTING_CAP: int = 1000

#: Hosts whose links are images themselves.
DIRECT_IMAGE_HOSTS: frozenset[str] = frozenset({"i.redd.it", "i.imgur.com", "preview.redd.it", "i.reddituploads.com"})

#: Hosts and extensions of video links (skipped as `video`).
VIDEO_HOSTS: frozenset[str] = frozenset({"v.redd.it", "youtube.com", "www.youtube.com", "youtu.be", "gfycat.com",
                                          "redgifs.com", "www.redgifs.com", "streamable.com"})
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
    """What one post gives: image URLs, or the reason it is skipped."""

    urls: list[str] = field(default_factory=list)
    skip: str | None = None
    invalid_items: list[str] = field(default_factory=list)  # gallery media ids with status != valid
    via: str = ""  # "link", "gallery", "preview", "page", "crosspost+..."


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
        PostImages: `urls` to download, or `skip` one of `"nsfw"`, `"removed"`, `"self_post"`,
        `"video"`, `"no_image"`; `invalid_items` lists gallery items that are not valid.
    """
    if d.get("over_18") and not nsfw:
        return PostImages(skip="nsfw")
    if _is_removed(d):
        return PostImages(skip="removed")
    parents = d.get("crosspost_parent_list") or []
    if parents and isinstance(parents[0], dict):
        inner = post_images(parents[0], nsfw)
        inner.via = "crosspost+" + inner.via
        return inner
    if d.get("is_self"):
        return PostImages(skip="self_post")
    if d.get("is_gallery") or d.get("gallery_data"):
        return _gallery(d)
    url = html.unescape(str(d.get("url_overridden_by_dest") or d.get("url") or ""))
    if (d.get("is_video") or str(d.get("post_hint", "")).endswith("video") or _host(url) in VIDEO_HOSTS
            or _ext(url) in VIDEO_EXTENSIONS):
        return PostImages(skip="video")
    if url and is_direct_image(url):
        return PostImages(urls=[url], via="link")
    images = ((d.get("preview") or {}).get("images")) or []
    preview = ((images[0] or {}).get("source") or {}).get("url") if images else None
    if preview:
        return PostImages(urls=[html.unescape(preview)], via="preview")
    if url.startswith(("http://", "https://")):
        return PostImages(urls=[url], via="page")
    return PostImages(skip="no_image")


def make_reddit(praw_site: str | None = None) -> Any:
    """Creates a read-only `praw.Reddit` from praw.ini / `praw_*` environment variables.

    Args:
        praw_site: str or None. praw.ini section; None lets praw choose (`praw_site`
            environment variable, else `DEFAULT`).

    Returns:
        praw.Reddit.

    Raises:
        ScrapeError: if the section does not exist or client_id / client_secret / user_agent
            are missing (one message saying how to set them).
    """
    import configparser

    import praw
    from praw.exceptions import MissingRequiredAttributeException

    try:
        reddit = praw.Reddit(site_name=praw_site, check_for_updates=False, check_for_async=False)
    except configparser.NoSectionError:
        raise ScrapeError(f"praw.ini has no section named {praw_site!r} (from --praw-site)", CREDENTIALS_HINT) from None
    except MissingRequiredAttributeException as exc:
        m = re.search(r"setting '(\w+)' missing", str(exc))
        what = m.group(1) if m else "client_id / client_secret / user_agent"
        raise ScrapeError(f"Reddit credentials not found: {what} is not set", CREDENTIALS_HINT) from None
    reddit.read_only = True
    return reddit


def _secrets(reddit: Any) -> list[str]:
    c = reddit.config
    vals = [getattr(c, k, None) for k in ("client_secret", "password", "refresh_token")]
    return [v for v in vals if isinstance(v, str) and v]


def _token(reddit: Any) -> str | None:
    """The current OAuth access token (to redact it from messages), read without a request."""
    try:
        return reddit._core._authorizer.access_token  # noqa: SLF001 - read only, for redaction
    except AttributeError:
        return None


def _listing(reddit: Any, sub: str, source: RedditSource) -> Any:
    s = reddit.subreddit(sub)
    if source.sort == "top":
        return s.top(time_filter=source.time_filter, limit=source.limit)
    return getattr(s, source.sort)(limit=source.limit)


def _next_post(it: Any, runner: Runner, sub: str, cfg: ScrapeConfig, reddit: Any) -> Any:
    """Next post of a listing; retries 429 / 5xx / connection errors; None at the end.

    Raises:
        ScrapeError: credentials refused (401 / OAuth error).
        _ListingFailed: the listing cannot go on (not found, forbidden, retries used up).
    """
    import prawcore

    for attempt in range(cfg.retries + 1):
        try:
            return next(it)
        except StopIteration:
            return None
        except (prawcore.OAuthException, prawcore.InvalidToken) as exc:
            raise ScrapeError(
                f"Reddit refused the credentials ({type(exc).__name__})", CREDENTIALS_HINT
            ) from None
        except prawcore.ResponseException as exc:
            status = exc.response.status_code
            if status == 401:
                raise ScrapeError(f"Reddit refused the credentials (HTTP 401 from {_host(exc.response.url)})",
                                  CREDENTIALS_HINT) from None
            if status in (403, 404) or isinstance(exc, (prawcore.Redirect, prawcore.NotFound, prawcore.Forbidden)):
                reason = "subreddit_forbidden" if status == 403 else "subreddit_not_found"
                raise _ListingFailed(reason, f"r/{sub}: HTTP {status} (private, banned or no such subreddit)") from None
            if status == 302:
                raise _ListingFailed("subreddit_not_found", f"r/{sub}: no such subreddit") from None
            retryable = status == 429 or status >= 500
            if not retryable or attempt == cfg.retries:
                raise _ListingFailed(f"listing_http_{status}", f"r/{sub}: HTTP {status} after {attempt + 1} tries") from None
            wait = retry_wait(exc.response.headers, attempt, cfg.backoff)
            runner.note(f"r/{sub}: HTTP {status} from Reddit, retrying in {wait:.1f}s ({attempt + 1}/{cfg.retries})")
            time.sleep(wait)
        except prawcore.RequestException as exc:
            if attempt == cfg.retries:
                raise _ListingFailed("listing_connection_error",
                                     f"r/{sub}: {type(exc.original_exception).__name__} after {attempt + 1} tries") from None
            time.sleep(retry_wait(None, attempt, cfg.backoff))
    return None


class _ListingFailed(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _provenance(post: Any, d: dict[str, Any], sub: str, label: str) -> dict[str, Any]:
    author = d.get("author")
    permalink = d.get("permalink")
    return dict(
        label=label, source=f"r/{sub}", post_id=d.get("id"), title=d.get("title"),
        author=None if author is None else str(author),
        permalink=f"https://www.reddit.com{permalink}" if permalink else None,
    )


def scrape_reddit(source: RedditSource, out: Path, cfg: ScrapeConfig, *, reddit: Any = None) -> ScrapeSummary:
    """Downloads the images of subreddit listings into `out/<label>/`, recording each attempt.

    Args:
        source: RedditSource. `subreddits`, `label`, `limit` (posts per subreddit), `sort`
            (`top`, `hot`, `new`, `rising`), `time_filter` (for `top`), `nsfw`, `praw_site`.
        out: Path. Output folder; images land in `out/<label>/<sha256[:16]><ext>`, the manifest
            in `out/_manifest.sqlite`.
        cfg: ScrapeConfig. Downloader settings (`workers`, `max_bytes`, timeouts, retries...).
        reddit: praw.Reddit or None. An existing instance; None builds one with `make_reddit`.

    Returns:
        ScrapeSummary: kept, skipped and failed counts by reason; notes (listing cap...).

    Raises:
        ScrapeError: no or refused credentials, an invalid subreddit name or label, or another
            scrape writing to `out`.
    """
    label = check_label(source.label)
    subs = [normalize_subreddit(s) for s in source.subreddits]
    if not subs:
        raise ScrapeError("no subreddit given", "e.g. imgclf scrape reddit carporn --label car")
    reddit = reddit if reddit is not None else make_reddit(source.praw_site)
    secrets = _secrets(reddit)
    runner = Runner(Path(out), cfg, f"scrape r/{'+r/'.join(subs)}", total=None, secrets=secrets)
    try:
        for sub in subs:
            if source.limit > LISTING_CAP:
                runner.note(f"r/{sub}: Reddit lists at most ~{LISTING_CAP} posts per listing; --limit {source.limit} "
                            f"cannot be reached with one sort (try other --sort / --time-filter values)")
            it = iter(_listing(reddit, sub, source))
            n = 0
            while True:
                try:
                    post = _next_post(it, runner, sub, cfg, reddit)
                except _ListingFailed as exc:
                    runner.summary.failed[exc.reason] = runner.summary.failed.get(exc.reason, 0) + 1
                    runner.note(exc.detail)
                    break
                except ScrapeError as exc:
                    raise ScrapeError(redact(exc.message, secrets + [t for t in [_token(reddit)] if t]),
                                      exc.hint) from None
                if post is None:
                    break
                n += 1
                _handle_post(post, sub, label, source.nsfw, runner)
                runner.poll()
            if n < source.limit and n >= LISTING_CAP - 100:
                runner.note(f"r/{sub}: the listing ended after {n} posts: Reddit's ~{LISTING_CAP}-post listing cap "
                            f"(sort={source.sort}). Scrape again with other --sort / --time-filter values for more; "
                            f"the manifest skips what you already have")
        summary = runner.close()
    except BaseException:
        runner.abort()
        raise
    from imgclf.ui import summary as print_summary

    print_summary(summary.line("scrape reddit"))
    return summary


def _handle_post(post: Any, sub: str, label: str, nsfw: bool, runner: Runner) -> None:
    d = vars(post)  # the listing's data only: reading a missing attribute would make praw fetch the post
    prov = _provenance(post, d, sub, label)
    found = post_images(d, nsfw)
    post_url = str(d.get("url") or prov["permalink"] or f"reddit:{d.get('id')}")
    if found.skip:
        runner.skip(Task(url=post_url, kind="post", **prov), found.skip)
        return
    for mid in found.invalid_items:
        runner.skip(Task(url=f"{prov['permalink']}#{mid}", **prov), "gallery_item_invalid",
                    "gallery item whose media_metadata status is not 'valid'")
    for url in found.urls:
        runner.submit(Task(url=url, **prov))
