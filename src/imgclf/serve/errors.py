"""The error answers of `imgclf serve`: one JSON shape, a status per reason, the handlers.

Every error answer is `{"detail": "<what went wrong, naming the file / field, and what to do>",
"reason": "<code>"}`, plus `predictions` when images were read and `errors` for invalid
parameters (the table of statuses and reasons is in `imgclf.serve.app`). Bad input never gets
a 500: `install_error_handlers` turns FastAPI's validation errors and Starlette's HTTP errors
into this shape, and a bug into a logged 500 that does not stop the server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from imgclf.errors import ImageError
from imgclf.images import ALLOWED_FORMATS, DEFAULT_MAX_PIXELS

log = logging.getLogger("imgclf.serve")

#: HTTP status of a request whose images all failed, by the first failure's reason.
STATUS_BY_REASON: dict[str, int] = {
    "not_an_image": 415,
    "unsupported_format": 415,
    "html": 415,
    "url_refused": 403,
    "urls_disabled": 403,
}
#: Status for any other image failure (decompression_bomb, truncated, corrupt, downloads...).
DEFAULT_IMAGE_ERROR_STATUS = 422

_FORMATS = ", ".join(sorted(ALLOWED_FORMATS - {"MPO"}))
#: What to do about an image that failed, by reason.
HINTS: dict[str, str] = {
    "not_an_image": f"send an image file ({_FORMATS})",
    "unsupported_format": f"convert it to one of {_FORMATS}",
    "html": "the URL gives a web page; use the direct link of the image",
    "decompression_bomb": f"images above {DEFAULT_MAX_PIXELS:,} pixels are refused; send a smaller version",
    "truncated": "the file is cut short; send a complete copy",
    "corrupt": "the file is damaged; send another copy",
    "url_refused": "use a public http(s) URL, or start the server with --allow-private-urls on a trusted network",
}
DOWNLOAD_HINT = "check that the URL is reachable from the server and is the direct link of an image"

#: Longest `url` field (and any other text field), in bytes.
MAX_FIELD_BYTES = 16 * 1024


def error_response(status: int, reason: str, detail: str, **extra: Any) -> JSONResponse:
    """An error answer: `{"detail", "reason"}` plus the `extra` fields that are not None.

    Args:
        status: int. HTTP status.
        reason: str. Machine-readable reason, e.g. `"not_an_image"`.
        detail: str. What went wrong, naming the file or field, and what to do.
        **extra: more fields (`predictions`, `errors`); None values are left out.

    Returns:
        fastapi.responses.JSONResponse.
    """
    body = {"detail": detail, "reason": reason}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status)


def images_failed(first: ImageError, n_images: int, first_is_url: bool, records: Sequence[dict]) -> JSONResponse:
    """The answer to a request none of whose images could be predicted.

    Args:
        first: ImageError. The first image's failure; it sets the status (`STATUS_BY_REASON`,
            else `DEFAULT_IMAGE_ERROR_STATUS`) and the reason.
        n_images: int. Images in the request.
        first_is_url: bool. The first image was a URL (the hint is then about downloading).
        records: sequence of dict. Every image's record (each with its `error`).

    Returns:
        fastapi.responses.JSONResponse.
    """
    reason = first.reason
    hint = HINTS.get(reason, DOWNLOAD_HINT if first_is_url else "send another image")
    text = f"{first.path}: {reason}" + (f" ({first.detail})" if first.detail else "")
    more = f"; {n_images - 1} more image(s) failed too" if n_images > 1 else ""
    status = STATUS_BY_REASON.get(reason, DEFAULT_IMAGE_ERROR_STATUS)
    return error_response(status, reason, f"{text}{more}; {hint}", predictions=list(records))


def _where(loc: tuple | list) -> str:
    """`("query", "top_k")` -> `"query parameter 'top_k'"`."""
    if not loc:
        return "the request"
    kind = {"query": "query parameter", "body": "form field", "path": "path parameter", "header": "header"}.get(
        str(loc[0]), str(loc[0])
    )
    return f"{kind} {loc[1]!r}" if len(loc) > 1 else kind


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 `invalid_request` for a FastAPI validation error, naming the first three problems."""
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors())
    parts = []
    for e in errors[:3]:
        loc = tuple(e.get("loc", ()))
        if len(loc) > 1 and loc[0] == "body" and loc[1] == "file":
            parts.append(
                "form field 'file' must be a file upload (a multipart part with a filename, "
                "e.g. curl -F file=@photo.jpg)"
            )
        else:
            parts.append(f"{_where(loc)}: {e.get('msg', 'invalid')}")
    return error_response(422, "invalid_request", "; ".join(parts) or "invalid request", errors=errors)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors (limits of the form parser, 404, 405, malformed bodies) in our shape."""
    assert isinstance(exc, StarletteHTTPException)
    cfg = request.app.state.config
    status, text = exc.status_code, str(exc.detail)
    if status == 413:
        return error_response(
            413,
            "body_too_large",
            f"the request body is larger than the limit of {cfg.max_bytes:,} bytes (--max-bytes); "
            "send fewer or smaller images per request",
        )
    if status == 400 and text.startswith(("Too many files", "Too many fields")):
        return error_response(
            413,
            "too_many_images",
            f"more than {cfg.max_images} images in one request (--max-images); split the request",
        )
    if status == 400 and text.startswith("Field exceeded maximum size"):
        return error_response(
            422, "invalid_request", f"a form field is longer than {MAX_FIELD_BYTES // 1024} KB; URLs must be shorter"
        )
    reasons = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
    hint = {
        404: f"no endpoint {request.url.path}; see /docs",
        405: f"{request.method} is not allowed on {request.url.path}; see /docs",
        400: f"malformed request ({text}); send multipart/form-data with `file` fields",
    }.get(status, text)
    return error_response(status, reasons.get(status, f"http_{status}"), hint)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 `internal_error` for a bug; the traceback goes to the server log."""
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")


def install_error_handlers(app: FastAPI) -> None:
    """Makes every error answer of `app` an `error_response` (see the module docstring)."""
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
