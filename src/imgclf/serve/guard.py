"""Checks made on every request before anything else runs: the `Host` header and the body size.

`RequestGuard` is a pure ASGI middleware in front of the whole FastAPI app (only the request
counter of `imgclf.serve.metrics` is further out; `imgclf.serve.app` puts them there),
answering in the JSON error shape of `imgclf.serve.errors`:

- On a loopback server, a `Host` header naming another host gets 400 `invalid_host`:
  DNS-rebinding protection (as Jupyter's server does), so a web page cannot reach the server
  under a name of its own.
- A `Content-Length` above the body limit gets 413 `body_too_large` without a byte of the body
  read (FastAPI's own `max_body_size` also counts the bytes as they stream, but answers a
  too-large `Content-Length` in plain text).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from imgclf.config import ServeConfig
from imgclf.serve.errors import error_response


def host_name(value: bytes) -> str:
    """The host of a `Host` header, without the port: `127.0.0.1:8000` -> `127.0.0.1`, `[::1]:80` -> `::1`."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def is_loopback(host: str) -> bool:
    """True for `localhost`, `::1` and `127.x.x.x` (brackets allowed)."""
    host = host.strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def allowed_hosts(cfg: ServeConfig) -> frozenset[str] | None:
    """The `Host` names a server listening on `cfg.host` answers; None = any (not loopback)."""
    if not is_loopback(cfg.host):
        return None
    return frozenset({"localhost", "127.0.0.1", "::1", cfg.host.strip("[]").lower()})


class RequestGuard:
    """Pure ASGI middleware: refuses a foreign `Host` on a loopback server and a too-large body.

    Args:
        app: ASGI app. The app it guards.
        max_bytes: int. Largest `Content-Length` accepted, in bytes; 0 = no limit.
        hosts: frozenset of str or None. Allowed `Host` names (`allowed_hosts`); None = any.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, hosts: frozenset[str] | None):
        self.app = app
        self.max_bytes = max_bytes
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = self._refusal(dict(scope.get("headers", ())))
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: dict[bytes, bytes]) -> Any:
        """The error answer for these request headers, or None when they pass."""
        host, declared = headers.get(b"host"), headers.get(b"content-length")
        if self.hosts is not None and host is not None and host_name(host) not in self.hosts:
            return error_response(
                400,
                "invalid_host",
                f"this server listens on a loopback address and answers only requests addressed to "
                f"{' or '.join(sorted(self.hosts))}, not {host.decode('latin-1')!r} (DNS-rebinding "
                "protection); use http://127.0.0.1:PORT, or start it with --host 0.0.0.0",
            )
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes > 0:
            response = error_response(
                413,
                "body_too_large",
                f"the request body ({int(declared):,} bytes) is larger than the limit of {self.max_bytes:,} "
                "bytes (--max-bytes); send fewer or smaller images per request",
            )
            response.headers["Connection"] = "close"
            return response
        return None
