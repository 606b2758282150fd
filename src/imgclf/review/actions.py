"""The review app's POST routes: a decision, and taking back the latest one.

`POST /api/decide` (`{"path", "action": reject | relabel | keep, "new_label", "view"}`) and
`POST /api/undo` (`{"view"}`) take a JSON body (415 otherwise, at most `MAX_BODY` bytes: 413),
validated by a pydantic model (400 with the field and the reason). A decision is committed to
the decisions database (`imgclf.records.decisions.DecisionLog.append`) before the answer
`{"saved": true, ...}` is sent, so the page never shows as saved what is not on disk.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imgclf.records.decisions import Decision, DecisionIndex
from imgclf.review.data import NotFoundError, safe_image
from imgclf.review.state import ReviewState, review_state

#: Largest accepted POST body, in bytes.
MAX_BODY = 64 * 1024

_NO_STORE = {"cache-control": "no-store"}


class DecideBody(BaseModel):
    """Body of `POST /api/decide`."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096)
    action: Literal["reject", "relabel", "keep"]
    new_label: str | None = Field(default=None, min_length=1, max_length=255)
    view: str = Field(default="", max_length=200)


class UndoBody(BaseModel):
    """Body of `POST /api/undo`."""

    model_config = ConfigDict(extra="forbid")

    view: str = Field(default="", max_length=200)


async def read_json_body(request: Request, model: type[BaseModel]) -> Any:
    """The request's JSON body, validated by `model`.

    Raises:
        HTTPException: 415 (not JSON), 413 (over `MAX_BODY`), 400 (not valid JSON, or not what
            `model` accepts: the message names the field).
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPException(415, "send a JSON body (Content-Type: application/json)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"body larger than {MAX_BODY} bytes")
    try:
        data = json.loads(bytes(body) or b"null")
    except ValueError:
        raise HTTPException(400, "the body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "body"
        raise HTTPException(400, f"{where}: {err.get('msg', 'invalid')}") from None


def _state(d: Decision | None) -> dict[str, Any] | None:
    """An image's effective decision as the page's script reads it."""
    return None if d is None else {"action": d.action, "new_label": d.new_label, "id": d.id, "time": d.time}


def decide_now(review: ReviewState, body: DecideBody) -> Response:
    """Checks and commits one decision; answers with it and the image's effective decision.

    A relabel to the class the image already has is recorded as a keep.

    Raises:
        NotFoundError: the path is not an image inside the folder (404).
        HTTPException: 400 for a path outside class folders, an unknown class, or a
            `new_label` with another action than relabel.
    """
    data, log = review.data, review.log
    safe_image(data.root, body.path)
    label = data.label_of(body.path)
    if label is None:
        raise HTTPException(400, f"{body.path} is not inside a class folder")
    action, new_label = body.action, body.new_label
    if action == "relabel":
        classes = data.classes()
        if new_label not in classes:
            raise HTTPException(400, f"unknown class {new_label!r}; the classes are {', '.join(classes)}")
        if new_label == label:
            action, new_label = "keep", None  # relabelled to the class it has: a keep
    elif new_label is not None:
        raise HTTPException(400, "new_label is only for action relabel")
    sha = data.sha256(body.path)
    if not sha:
        raise NotFoundError(f"not found: {body.path}")
    d = log.append(action, body.path, label=label, new_label=new_label, view=body.view, sha256=sha)
    state = DecisionIndex(log.decisions()).lookup(sha, body.path, data.decided_file)
    return JSONResponse({"saved": True, "decision": d.to_dict(), "state": _state(state)}, headers=_NO_STORE)


def undo_now(review: ReviewState, body: UndoBody) -> Response:
    """Takes back the latest decision (of any image); 409 when there is none."""
    res = review.log.undo_last(view=body.view)
    if res is None:
        return JSONResponse({"saved": False, "error": "nothing to undo"}, status_code=409, headers=_NO_STORE)
    undone, row = res
    state = DecisionIndex(review.log.decisions()).lookup(undone.sha256, undone.path, review.data.decided_file)
    return JSONResponse(
        {"saved": True, "undone": undone.to_dict(), "undo": row.to_dict(), "state": _state(state)}, headers=_NO_STORE
    )


async def decide(request: Request) -> Response:
    """`POST /api/decide`: reject, relabel or keep one image."""
    body = await read_json_body(request, DecideBody)
    return await run_in_threadpool(decide_now, review_state(request), body)


async def undo(request: Request) -> Response:
    """`POST /api/undo`: take back the latest decision."""
    body = await read_json_body(request, UndoBody)
    return await run_in_threadpool(undo_now, review_state(request), body)


#: The POST routes.
ACTION_ROUTES: list[Route] = [
    Route("/api/decide", decide, methods=["POST"]),
    Route("/api/undo", undo, methods=["POST"]),
]
