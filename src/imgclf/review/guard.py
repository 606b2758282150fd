"""The review server's gate: the per-start token, the `Host` check and the `Origin` check.

`Guard` is ASGI middleware wrapped around the whole application (`imgclf.review.app`), so no
route runs before these rules pass (the model is Jupyter server's):

- a random token per start (`secrets.token_urlsafe`, made by `imgclf.review.server`) on every
  request: `?token=` once (it is then kept in an HttpOnly, SameSite=Strict cookie named after
  the port, and pages redirect to drop it from the address bar), or the `X-Imgclf-Token`
  header; without it: 403;
- the `Host` header must be an address this server serves (`127.0.0.1:PORT`, `localhost:PORT`,
  ...): 403 otherwise, so a DNS-rebinding page cannot talk to it;
- state-changing requests are POST only (other methods: 405), carry the token in the
  `X-Imgclf-Token` header (a cookie alone is not enough) and a same-origin `Origin` header: 403
  otherwise;
- every response gets `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
  `X-Frame-Options: DENY`, `Cross-Origin-Resource-Policy: same-origin`, and a
  Content-Security-Policy that allows nothing unless the route set its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse

#: Header carrying the token (the page's script sends it with every POST).
TOKEN_HEADER = "x-imgclf-token"

#: Paths that answer with the token in the query instead of redirecting (files and the API).
PAGE_PREFIXES_WITHOUT_REDIRECT = ("/image/", "/thumb/", "/api/")

#: Headers added to every response that does not set them itself.
BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

#: Content-Security-Policy of a response whose route did not set one.
DEFAULT_CSP = b"default-src 'none'; frame-ancestors 'none'"

_WRONG_HOST = (
    "forbidden: the Host header names an address this review server does not "
    "serve (DNS rebinding protection); open the URL `imgclf review` printed"
)
_WRONG_TOKEN = (
    "forbidden: missing or wrong token; open the URL `imgclf review` printed (http://127.0.0.1:PORT/?token=...)"
)
_WRONG_ORIGIN = "forbidden: a state-changing request must come from this page (same-origin Origin header)"
_WRONG_POST_TOKEN = f"forbidden: missing or wrong token (send it in the {TOKEN_HEADER} header)"


def plain_response(status: int, message: str) -> PlainTextResponse:
    """A one-line text answer `"<status> <message>"`, never cached."""
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
        return given is not None and given != "" and hmac.compare_digest(given.encode("utf-8", "replace"), self.token)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # websockets: not served
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "").strip().lower()
        cookie: str | None = None
        if host not in self.hosts:
            answer: Any = plain_response(403, _WRONG_HOST)
        elif scope["method"] in ("GET", "HEAD"):
            answer, cookie = self._check_read(scope, headers)
        elif scope["method"] == "POST":
            answer = self._check_write(headers, host)
        else:
            answer = plain_response(405, f"method {scope['method']} not allowed: GET to read, POST to decide")
        await _send_with_headers(answer or self.app, scope, receive, send, cookie)

    def _check_read(self, scope: dict, headers: Headers) -> tuple[Any, str | None]:
        """A GET / HEAD: (refusal or redirect, None), or (None, the cookie to set if any)."""
        query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        url_token = query.get("token")
        given = url_token or _header_token(headers) or Request(scope).cookies.get(self.cookie)
        if not self._ok(given):
            return plain_response(403, _WRONG_TOKEN), None
        if not url_token:
            return None, None
        set_cookie = f"{self.cookie}={url_token}; Path=/; HttpOnly; SameSite=Strict"
        if scope["path"].startswith(PAGE_PREFIXES_WITHOUT_REDIRECT):
            return None, set_cookie
        rest = [(k, v) for k, v in query.multi_items() if k != "token"]
        # One leading "/": never a protocol-relative `//host` (an open redirect).
        path = quote("/" + scope["path"].lstrip("/\\"), safe="/:@!$&'()*+,;=-._~")
        location = path + (f"?{urlencode(rest)}" if rest else "")
        resp = RedirectResponse(location, status_code=303, headers={"cache-control": "no-store"})
        resp.headers.append("set-cookie", set_cookie)
        return resp, None

    def _check_write(self, headers: Headers, host: str) -> Any:
        """A POST: the refusal, or None when its `Origin` and token header are right."""
        origin = headers.get("origin")
        if origin is None or origin.strip().lower() != f"http://{host}":
            return plain_response(403, _WRONG_ORIGIN)
        if not self._ok(_header_token(headers)):
            return plain_response(403, _WRONG_POST_TOKEN)
        return None


def _header_token(headers: Headers) -> str | None:
    """The token of the `X-Imgclf-Token` header, or of `Authorization: token ...`."""
    auth = headers.get("authorization", "")
    return headers.get(TOKEN_HEADER) or (auth[6:].strip() if auth.lower().startswith("token ") else None)


async def _send_with_headers(app: Any, scope: dict, receive: Any, send: Any, cookie: str | None) -> None:
    """Runs `app`, adding `BASE_HEADERS`, the default CSP and `cookie` to its response."""

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            hs = list(message.get("headers") or [])
            names = {k.lower() for k, _ in hs}
            hs += [h for h in BASE_HEADERS if h[0] not in names]
            if b"content-security-policy" not in names:
                hs.append((b"content-security-policy", DEFAULT_CSP))
            if cookie:
                hs.append((b"set-cookie", cookie.encode("latin-1")))
            message = {**message, "headers": hs}
        await send(message)

    await app(scope, receive, wrapped)
