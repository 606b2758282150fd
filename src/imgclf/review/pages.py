"""The review app's GET routes: the pages (one view each) and the image files behind them.

`GET /` (a grid per class), `/class/{name}`, `/issues`, `/outliers`, `/duplicates`,
`/conflicts`, `/errors`, `/blurry`, `/decisions` (pages, `?page=N`) render
`templates/review/page.html` through `imgclf.html`; `GET /image/{path}` (the file) and
`/thumb/{path}` (a thumbnail) serve only what `imgclf.review.data.safe_image` accepts (inside
the folder, an image file): anything else is a 404.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from imgclf.errors import ImgclfError
from imgclf.html import render
from imgclf.records.decisions import Decision, DecisionIndex
from imgclf.review.data import MEDIA_TYPES, NotFoundError, ReviewData, View, safe_image
from imgclf.review.state import ReviewState, review_state

#: Navigation bar: view key, title, route.
NAV: tuple[tuple[str, str, str], ...] = (
    ("classes", "Classes", "/"),
    ("issues", "Label issues", "/issues"),
    ("outliers", "Outliers", "/outliers"),
    ("duplicates", "Duplicates", "/duplicates"),
    ("conflicts", "Label conflicts", "/conflicts"),
    ("errors", "Run errors", "/errors"),
    ("blurry", "Blurriest", "/blurry"),
    ("decisions", "Decisions", "/decisions"),
)

#: Builds a page's view from the decisions made so far.
ViewBuilder = Callable[[list[Decision]], View]


def page_number(request: Request) -> int:
    """The `?page=N` of a request (1 when absent).

    Raises:
        HTTPException: 400 for anything but a whole number in [1, 1,000,000].
    """
    raw = request.query_params.get("page", "1")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 7) or not 1 <= int(raw) <= 1_000_000:
        raise HTTPException(400, f"page must be a whole number >= 1; received {raw!r}")
    return int(raw)


def page_csp(nonce: str) -> str:
    """The Content-Security-Policy of a page: this origin only, and the page's nonce'd style and script."""
    return (
        f"default-src 'none'; img-src 'self'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )


def _nav(data: ReviewData, index: DecisionIndex, view: View) -> list[dict[str, Any]]:
    """The navigation bar's entries, each with its count (None: no report for it) and state."""
    counts = data.nav_counts()
    counts["decisions"] = len(index.stacks)
    active = "classes" if view.key.startswith("class") else view.key
    return [
        {"key": k, "title": title, "href": href, "count": counts.get(k), "active": k == active}
        for k, title, href in NAV
    ]


def render_view(request: Request, build: ViewBuilder) -> Response:
    """The page of one view: its tiles with their decisions, the navigation, the legend.

    Args:
        request: the request (its path names the view on an error page).
        build: callable `decisions -> View`.

    Returns:
        HTMLResponse, with a fresh nonce in its Content-Security-Policy and `no-store`.

    Raises:
        NotFoundError: the view names something that does not exist (a 404).
    """
    review: ReviewState = review_state(request)
    data = review.data
    decisions = review.log.decisions()
    index = DecisionIndex(decisions)
    try:
        view = build(decisions)
    except NotFoundError:
        raise
    except ImgclfError as exc:  # a broken report: say so on the page
        view = View(request.url.path.strip("/") or "classes", "Cannot show this view", "", message=exc.message)
    for t in view.tiles:
        if t.path:
            t.sha256 = data.sha256(t.path)
            t.decision = index.lookup(t.sha256, t.path, data.decided_file)
    nonce = secrets.token_urlsafe(16)
    page = render(
        "review/page.html",
        view=view,
        nav=_nav(data, index, view),
        classes=data.classes(),
        token=review.token,
        nonce=nonce,
        root=str(data.root),
        base=quote(request.url.path),
        query_page=view.page,
    )
    return HTMLResponse(page, headers={"content-security-policy": page_csp(nonce), "cache-control": "no-store"})


def home(request: Request) -> Response:
    """`GET /`: a grid per class."""
    return render_view(request, lambda _: review_state(request).data.view_classes())


def one_class(request: Request) -> Response:
    """`GET /class/{name}`: every image of one class, paged."""
    name, page = request.path_params["name"], page_number(request)
    return render_view(request, lambda _: review_state(request).data.view_class(name, page))


def paged(method: str) -> Callable[[Request], Response]:
    """The endpoint of a paged view: `ReviewData.<method>(page)`."""

    def endpoint(request: Request) -> Response:
        page = page_number(request)
        return render_view(request, lambda _: getattr(review_state(request).data, method)(page))

    return endpoint


def run_errors(request: Request) -> Response:
    """`GET /errors`: an evaluated run's most confidently wrong images."""
    return render_view(request, lambda _: review_state(request).data.view_errors())


def decisions_page(request: Request) -> Response:
    """`GET /decisions`: the decided images and the log."""
    return render_view(request, lambda ds: review_state(request).data.view_decisions(ds))


def image(request: Request) -> Response:
    """`GET /image/{path}`: the file itself."""
    real, fmt = safe_image(review_state(request).data.root, request.path_params["path"])
    return FileResponse(real, media_type=MEDIA_TYPES[fmt], headers={"cache-control": "no-cache"})


def thumb(request: Request) -> Response:
    """`GET /thumb/{path}`: a thumbnail, revalidated by an ETag of the file's size and time."""
    review = review_state(request)
    rel = request.path_params["path"]
    real, fmt = safe_image(review.data.root, rel)
    st = real.stat()
    etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
    headers = {"etag": etag, "cache-control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    body, media_type = review.thumbs.get(real, fmt, st, rel)
    return Response(body, media_type=media_type, headers=headers)


def favicon(request: Request) -> Response:
    """`GET /favicon.ico`: nothing (no request to a missing file in the log)."""
    return Response(status_code=204)


#: The GET routes, in the order Starlette tries them.
PAGE_ROUTES: list[Route] = [
    Route("/", home),
    Route("/class/{name}", one_class),
    Route("/issues", paged("view_issues")),
    Route("/outliers", paged("view_outliers")),
    Route("/duplicates", paged("view_duplicates")),
    Route("/conflicts", paged("view_conflicts")),
    Route("/blurry", paged("view_blurry")),
    Route("/errors", run_errors),
    Route("/decisions", decisions_page),
    Route("/image/{path:path}", image),
    Route("/thumb/{path:path}", thumb),
    Route("/favicon.ico", favicon),
]
