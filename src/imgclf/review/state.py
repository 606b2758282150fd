"""What every route of the review app depends on: the folder's data, the decision log, the token.

`create_app` (imgclf.review.app) puts one `ReviewState` on the Starlette application
(`app.state.review`); a route reads it with `review_state(request)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from imgclf.records.decisions import DecisionLog
from imgclf.review.data import ReviewData
from imgclf.review.thumbs import ThumbnailCache


@dataclass
class ReviewState:
    """The dependencies of the review routes.

    Attributes:
        data: ReviewData. The folder and the reports shown.
        log: DecisionLog. Where decisions are appended (committed before a POST answers).
        token: str. The per-start secret; the page's script sends it with every POST.
        thumbs: ThumbnailCache. Thumbnails already made.
    """

    data: ReviewData
    log: DecisionLog
    token: str
    thumbs: ThumbnailCache = field(default_factory=ThumbnailCache)


def review_state(request: Request) -> ReviewState:
    """The `ReviewState` of the application serving `request`."""
    state: ReviewState = request.app.state.review
    return state
