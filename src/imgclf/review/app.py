"""The `imgclf review` web application: Starlette routes behind one guard.

The application is assembled here from modules of their own size:

- `imgclf.review.guard`: `Guard`, the middleware every request passes first -- the per-start
  token, the `Host` check (DNS rebinding) and, for state-changing requests, POST only with the
  token header and a same-origin `Origin`; security headers on every response;
- `imgclf.review.pages`: the GET routes -- one page per view (`templates/review/page.html`
  through `imgclf.html`, with a Content-Security-Policy allowing only this origin and the
  page's nonce'd style and script) and the image files, which `imgclf.review.data.safe_image`
  checks (outside the folder -- `..`, absolute, a symlink out -- or not an image file: 404);
- `imgclf.review.actions`: the POST routes -- a decision is committed to the database before
  the answer says it is saved;
- `imgclf.review.state`: what the routes depend on (`ReviewState`: data, decision log, token,
  thumbnails), kept on the application;
- `imgclf.review.thumbs`: thumbnails and their cache.

Bad input is a clear 4xx with a one-line message (JSON for `/api/`), never a traceback; a bug
is a 500 whose detail goes to the server's stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from imgclf.errors import ImgclfError
from imgclf.records.decisions import DecisionLog
from imgclf.review.actions import ACTION_ROUTES
from imgclf.review.data import NotFoundError, ReviewData
from imgclf.review.guard import Guard, plain_response
from imgclf.review.pages import PAGE_ROUTES
from imgclf.review.state import ReviewState


def _error(request: Request, status: int, message: str) -> Response:
    """An error as the caller reads it: JSON for the page's script, one text line otherwise."""
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {"saved": False, "error": message}, status_code=status, headers={"cache-control": "no-store"}
        )
    return plain_response(status, message)


async def _on_http(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        return await _on_bug(request, exc)
    return _error(request, exc.status_code, str(exc.detail))


async def _on_not_found(request: Request, exc: Exception) -> Response:
    return _error(request, 404, getattr(exc, "message", "not found"))


async def _on_imgclf(request: Request, exc: Exception) -> Response:
    return _error(request, 400, getattr(exc, "message", str(exc)))


async def _on_bug(request: Request, exc: Exception) -> Response:
    print(f"imgclf review: internal error on {request.url.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return _error(request, 500, "internal error (reported on the server's stderr)")


def create_app(data: ReviewData, log: DecisionLog, *, token: str, hosts: Iterable[str], cookie: str) -> Any:
    """Builds the review application, wrapped in `Guard`.

    Args:
        data: ReviewData. The folder and reports shown.
        log: DecisionLog. Where decisions are appended.
        token: str. The per-start secret every request must carry.
        hosts: iterable of str. Allowed `Host` values with the port (`"127.0.0.1:8765"`).
        cookie: str. Name of the cookie keeping the token (include the port: cookies are not
            separated by port).

    Returns:
        An ASGI application.
    """
    app = Starlette(
        routes=[*PAGE_ROUTES, *ACTION_ROUTES],
        exception_handlers={
            HTTPException: _on_http,
            NotFoundError: _on_not_found,
            ImgclfError: _on_imgclf,
            Exception: _on_bug,
        },
    )
    app.state.review = ReviewState(data, log, token)
    return Guard(app, token=token, hosts=hosts, cookie=cookie)
