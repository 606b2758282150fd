"""The `imgclf review` web application: Starlette, Jinja2 templates, one small script.

Safety, modelled on Jupyter server (every rule is enforced by `Guard`, before any route runs):

- a random token per start (`secrets.token_urlsafe`) on every request: `?token=` once (it is
  then kept in an HttpOnly, SameSite=Strict cookie named after the port, and pages redirect to
  drop it from the address bar), or the `X-Imgclf-Token` header; without it: 403;
- the `Host` header must be an address this server serves (`127.0.0.1:PORT`,
  `localhost:PORT`, ...): 403 otherwise, so a DNS-rebinding page cannot talk to it;
- state-changing requests are POST only (other methods: 405), carry the token in the
  `X-Imgclf-Token` header (a cookie alone is not enough), a same-origin `Origin` header and a
  JSON body: 403 / 415 otherwise;
- paths are checked by `imgclf.review.data.safe_image`: outside the folder (`..`, absolute, a
  symlink out) or not an image file -> 404;
- pages carry a Content-Security-Policy allowing only this origin and the page's own nonce'd
  script; every response has `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.

Bad input is a clear 4xx with a one-line message, never a traceback.

Routes: `GET /` (a grid per class), `/class/{name}`, `/issues`, `/outliers`, `/duplicates`,
`/conflicts`, `/errors`, `/blurry`, `/decisions` (pages, `?page=N`); `GET /image/{path}` (the
file), `/thumb/{path}` (a thumbnail); `POST /api/decide` (`{"path", "action": reject | relabel |
keep, "new_label", "view"}`), `POST /api/undo` (`{"view"}`: takes back the latest decision).
A decision is committed to the database before the POST answers 200.
"""

from __future__ import annotations

import hmac
import io
import json
import secrets
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from imgclf.errors import ImageError, ImgclfError
from imgclf.review.data import MEDIA_TYPES, NotFoundError, ReviewData, View, safe_image
from imgclf.review.decisions import Decision, DecisionIndex, DecisionLog

#: Header carrying the token (the page's script sends it with every POST).
TOKEN_HEADER = "x-imgclf-token"

#: Largest accepted POST body, in bytes.
MAX_BODY = 64 * 1024

#: Longest side of a thumbnail, in pixels; smaller images are served as they are.
THUMB_SIDE = 224

#: Files up to this size whose sides are at most `THUMB_SIDE` are served unchanged as thumbnails.
THUMB_PASSTHROUGH_BYTES = 256 * 1024

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

_PAGE_PREFIXES_WITHOUT_REDIRECT = ("/image/", "/thumb/", "/api/")
_TEMPLATES = Path(__file__).parent / "templates"
_BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def _plain(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(f"{status} {message}\n", status_code=status, headers={"cache-control": "no-store"})


class Guard:
    """ASGI middleware enforcing the token, `Host`, method and `Origin` rules (module docs).

    Args:
        app: the ASGI application to protect.
        token: str. The per-start secret.
        hosts: iterable of str. Allowed `Host` header values, lower case, with the port
            (`"127.0.0.1:8765"`).
        cookie: str. Name of the cookie that keeps the token.
    """

    def __init__(self, app: Any, *, token: str, hosts: Iterable[str], cookie: str):
        self.app = app
        self.token = token.encode()
        self.hosts = frozenset(h.lower() for h in hosts)
        self.cookie = cookie

    def _ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), self.token)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # websockets: not served
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "").strip().lower()
        if host not in self.hosts:
            await self._refuse(
                403,
                "forbidden: the Host header names an address this review server does not "
                "serve (DNS rebinding protection); open the URL `imgclf review` printed",
                scope,
                receive,
                send,
            )
            return
        method = scope["method"]
        query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        auth = headers.get("authorization", "")
        header_token = headers.get(TOKEN_HEADER) or (auth[6:].strip() if auth.lower().startswith("token ") else None)
        set_cookie: str | None = None
        if method in ("GET", "HEAD"):
            url_token = query.get("token")
            given = url_token or header_token or Request(scope).cookies.get(self.cookie)
            if not self._ok(given):
                await self._refuse(
                    403,
                    "forbidden: missing or wrong token; open the URL `imgclf review` printed "
                    "(http://127.0.0.1:PORT/?token=...)",
                    scope,
                    receive,
                    send,
                )
                return
            if url_token:
                set_cookie = f"{self.cookie}={url_token}; Path=/; HttpOnly; SameSite=Strict"
                if not scope["path"].startswith(_PAGE_PREFIXES_WITHOUT_REDIRECT):
                    rest = [(k, v) for k, v in query.multi_items() if k != "token"]
                    # One leading "/": never a protocol-relative `//host` (an open redirect).
                    path = quote("/" + scope["path"].lstrip("/\\"), safe="/:@!$&'()*+,;=-._~")
                    location = path + (f"?{urlencode(rest)}" if rest else "")
                    resp = RedirectResponse(location, status_code=303, headers={"cache-control": "no-store"})
                    resp.headers.append("set-cookie", set_cookie)
                    await self._call(resp, scope, receive, send, None)
                    return
        elif method == "POST":
            origin = headers.get("origin")
            if origin is None or origin.strip().lower() != f"http://{host}":
                await self._refuse(
                    403,
                    "forbidden: a state-changing request must come from this page (same-origin Origin header)",
                    scope,
                    receive,
                    send,
                )
                return
            if not self._ok(header_token):
                await self._refuse(
                    403,
                    f"forbidden: missing or wrong token (send it in the {TOKEN_HEADER} header)",
                    scope,
                    receive,
                    send,
                )
                return
        else:
            await self._refuse(405, f"method {method} not allowed: GET to read, POST to decide", scope, receive, send)
            return
        await self._call(self.app, scope, receive, send, set_cookie)

    async def _refuse(self, status: int, message: str, scope: dict, receive: Any, send: Any) -> None:
        await self._call(_plain(status, message), scope, receive, send, None)

    @staticmethod
    async def _call(app: Any, scope: dict, receive: Any, send: Any, cookie: str | None) -> None:
        async def wrapped(message: dict) -> None:
            if message["type"] == "http.response.start":
                hs = list(message.get("headers") or [])
                names = {k.lower() for k, _ in hs}
                hs += [h for h in _BASE_HEADERS if h[0] not in names]
                if b"content-security-policy" not in names:
                    hs.append((b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"))
                if cookie:
                    hs.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": hs}
            await send(message)

        await app(scope, receive, wrapped)


# ----------------------------------------------------------------------------- request bodies
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


async def _json_body(request: Request, model: type[BaseModel]) -> Any:
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
    return None if d is None else {"action": d.action, "new_label": d.new_label, "id": d.id, "time": d.time}


# ------------------------------------------------------------------------------ the app
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
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=jinja2.select_autoescape(("html",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates = Jinja2Templates(env=env)
    thumbs: OrderedDict[tuple[str, int, int], tuple[bytes, str]] = OrderedDict()
    thumbs_lock = threading.Lock()

    locate_decided = data.decided_file

    def page_number(request: Request) -> int:
        raw = request.query_params.get("page", "1")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 7) or not 1 <= int(raw) <= 1_000_000:
            raise HTTPException(400, f"page must be a whole number >= 1; received {raw!r}")
        return int(raw)

    def render(request: Request, build) -> Response:
        decisions = log.decisions()
        index = DecisionIndex(decisions)
        try:
            view: View = build(decisions)
        except NotFoundError:
            raise
        except ImgclfError as exc:  # a broken report: say so on the page
            view = View(request.url.path.strip("/") or "classes", "Cannot show this view", "", message=exc.message)
        for t in view.tiles:
            if t.path:
                t.sha256 = data.sha256(t.path)
                t.decision = index.lookup(t.sha256, t.path, locate_decided)
        counts = data.nav_counts()
        counts["decisions"] = len(index.stacks)
        active = "classes" if view.key.startswith("class") else view.key
        nav = [
            {"key": k, "title": title, "href": href, "count": counts.get(k), "active": k == active}
            for k, title, href in NAV
        ]
        nonce = secrets.token_urlsafe(16)
        classes = data.classes()
        context = {
            "view": view,
            "nav": nav,
            "classes": classes,
            "token": token,
            "nonce": nonce,
            "root": str(data.root),
            "base": quote(request.url.path),
            "query_page": view.page,
        }
        csp = (
            f"default-src 'none'; img-src 'self'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
        )
        return templates.TemplateResponse(
            request, "page.html", context, headers={"content-security-policy": csp, "cache-control": "no-store"}
        )

    def home(request: Request) -> Response:
        return render(request, lambda _: data.view_classes())

    def one_class(request: Request) -> Response:
        name, page = request.path_params["name"], page_number(request)
        return render(request, lambda _: data.view_class(name, page))

    def paged(method: str):
        def endpoint(request: Request) -> Response:
            page = page_number(request)
            return render(request, lambda _: getattr(data, method)(page))

        return endpoint

    def errors(request: Request) -> Response:
        return render(request, lambda _: data.view_errors())

    def decisions_page(request: Request) -> Response:
        return render(request, lambda ds: data.view_decisions(ds))

    def image(request: Request) -> Response:
        real, fmt = safe_image(data.root, request.path_params["path"])
        return FileResponse(real, media_type=MEDIA_TYPES[fmt], headers={"cache-control": "no-cache"})

    def thumb(request: Request) -> Response:
        rel = request.path_params["path"]
        real, fmt = safe_image(data.root, rel)
        st = real.stat()
        etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        headers = {"etag": etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        key = (str(real), st.st_size, st.st_mtime_ns)
        with thumbs_lock:
            hit = thumbs.get(key)
            if hit:
                thumbs.move_to_end(key)
        if hit is None:
            hit = _make_thumb(real, fmt, st.st_size, rel)
            with thumbs_lock:
                thumbs[key] = hit
                while len(thumbs) > 2048:
                    thumbs.popitem(last=False)
        return Response(hit[0], media_type=hit[1], headers=headers)

    def decide_sync(body: DecideBody) -> Response:
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
        state = DecisionIndex(log.decisions()).lookup(sha, body.path, locate_decided)
        return JSONResponse(
            {"saved": True, "decision": d.to_dict(), "state": _state(state)}, headers={"cache-control": "no-store"}
        )

    async def decide(request: Request) -> Response:
        body = await _json_body(request, DecideBody)
        return await run_in_threadpool(decide_sync, body)

    def undo_sync(body: UndoBody) -> Response:
        res = log.undo_last(view=body.view)
        if res is None:
            return JSONResponse(
                {"saved": False, "error": "nothing to undo"}, status_code=409, headers={"cache-control": "no-store"}
            )
        undone, row = res
        state = DecisionIndex(log.decisions()).lookup(undone.sha256, undone.path, locate_decided)
        return JSONResponse(
            {"saved": True, "undone": undone.to_dict(), "undo": row.to_dict(), "state": _state(state)},
            headers={"cache-control": "no-store"},
        )

    async def undo(request: Request) -> Response:
        body = await _json_body(request, UndoBody)
        return await run_in_threadpool(undo_sync, body)

    def favicon(request: Request) -> Response:
        return Response(status_code=204)

    def _error(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"saved": False, "error": message}, status_code=status, headers={"cache-control": "no-store"}
            )
        return _plain(status, message)

    async def on_http(request: Request, exc: HTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail))

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return _error(request, 404, getattr(exc, "message", "not found"))

    async def on_imgclf(request: Request, exc: Exception) -> Response:
        return _error(request, 400, getattr(exc, "message", str(exc)))

    async def on_bug(request: Request, exc: Exception) -> Response:
        print(f"imgclf review: internal error on {request.url.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _error(request, 500, "internal error (reported on the server's stderr)")

    routes = [
        Route("/", home),
        Route("/class/{name}", one_class),
        Route("/issues", paged("view_issues")),
        Route("/outliers", paged("view_outliers")),
        Route("/duplicates", paged("view_duplicates")),
        Route("/conflicts", paged("view_conflicts")),
        Route("/blurry", paged("view_blurry")),
        Route("/errors", errors),
        Route("/decisions", decisions_page),
        Route("/image/{path:path}", image),
        Route("/thumb/{path:path}", thumb),
        Route("/api/decide", decide, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/favicon.ico", favicon),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: on_http,
            NotFoundError: on_not_found,
            ImgclfError: on_imgclf,
            Exception: on_bug,
        },
    )
    return Guard(app, token=token, hosts=hosts, cookie=cookie)


def _make_thumb(real: Path, fmt: str, nbytes: int, rel: str) -> tuple[bytes, str]:
    """A thumbnail of at most `THUMB_SIDE` pixels (the file itself when it is already small)."""
    from PIL import Image

    from imgclf.images import ORIGINAL_SIZE_KEY, open_image

    try:
        img = open_image(real, draft=THUMB_SIDE, name=rel)
    except ImageError as exc:
        raise NotFoundError(f"cannot show {rel}: {exc.reason}") from None
    w, h = img.info.get(ORIGINAL_SIZE_KEY, img.size)
    if max(w, h) <= THUMB_SIDE and nbytes <= THUMB_PASSTHROUGH_BYTES and fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP"):
        return real.read_bytes(), MEDIA_TYPES[fmt]
    img = img.copy()
    img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue(), "image/jpeg"
