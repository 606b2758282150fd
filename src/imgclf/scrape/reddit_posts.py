"""What one Reddit post gives: its image URLs, or why it is skipped, and its manifest record.

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

Pure functions of the post's listing JSON (a dict): no request, no I/O.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imgclf.images import IMAGE_EXTENSIONS
from imgclf.records.manifest import PostRecord

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


def post_record(
    d: dict[str, Any], sub: str, label: str, listing: str, skip: str | None, crosspost_parent: str | None = None
) -> PostRecord:
    """The manifest record of one post (`imgclf.records.manifest.PostRecord`).

    Args:
        d: dict. The post's listing JSON (or a crossposted parent's).
        sub: str. The subreddit walked (used when the post does not name its own).
        label: str. Class folder.
        listing: str. The listing that gave it, e.g. `"top/all"`.
        skip: str or None. The post-level skip reason, None when it is taken.
        crosspost_parent: str or None, default None. Id of the post it crossposts.

    Returns:
        PostRecord.
    """
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
