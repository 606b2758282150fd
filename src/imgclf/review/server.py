"""Runs the review application: binds the socket, makes the token, serves with uvicorn.

The socket is bound (and listening) before the URL is announced, so a client that reads the
URL can connect at once; `port=0` asks the system for a free port. uvicorn runs with its
access log off and only warnings logged (to stderr), so stdout carries nothing but what the
caller prints. SIGINT / SIGTERM stop it gracefully; a killed server loses nothing either,
because every decision was committed before its response.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import threading
from collections.abc import Callable

from imgclf.errors import ConfigError
from imgclf.records.decisions import DecisionLog, database_path
from imgclf.review import DEFAULT_HOST, DEFAULT_PORT
from imgclf.review.app import create_app
from imgclf.review.data import ReviewData


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def is_loopback(host: str) -> bool:
    """True when `host` is a loopback address or `localhost` (the page is not on the network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> set[str]:
    """`Host` header values the server accepts: loopback names, and the bound host, with the port.

    Args:
        host: str. The bound address.
        port: int. The bound port.

    Returns:
        set of str, lower case, e.g. `{"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}`.
    """
    return {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"{_url_host(host).lower()}:{port}"}


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (`port` 0: any free port).

    Args:
        host: str. Address to bind, e.g. "127.0.0.1", "::1", "0.0.0.0".
        port: int in [0, 65535].

    Returns:
        socket.socket, listening.

    Raises:
        ConfigError: if the address is unknown, the port is out of range or in use.
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in [0, 65535]; received {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}", "pass --host 127.0.0.1") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {_url_host(host)}:{port}: {exc.strerror or exc}",
            "pass another --port, or --port 0 for any free port",
        ) from None
    return sock


def serve_review(
    root: str | os.PathLike,
    *,
    audit: str | os.PathLike | None = None,
    run: str | os.PathLike | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serves the review page of `root` until interrupted.

    Args:
        root: path. The folder to review (class tree or pre-split tree; usually `clean`'s
            output). Decisions go to `root/_reports/decisions.sqlite`.
        audit: path or None, default None. `imgclf audit`'s output folder.
        run: path or None, default None. An evaluated run folder (or its metrics JSON).
        host: str, default "127.0.0.1". Address to bind.
        port: int in [0, 65535], default `DEFAULT_PORT` (8765); 0 = any free port.
        open_browser: bool, default False. Open the URL in the default browser.
        on_ready: callable `url -> None` or None. Called once the socket listens, with
            `http://HOST:PORT/?token=TOKEN` (the CLI prints it).

    Raises:
        DataError: `root`, `audit` or `run` unusable, or the decisions database unreadable.
        ConfigError: the address cannot be bound.
    """
    import uvicorn

    data = ReviewData(root, audit=audit, run=run)
    log = DecisionLog(database_path(data.root))
    sock = None
    try:
        sock = bind_socket(host, port)
        port = sock.getsockname()[1]
        token = secrets.token_urlsafe(32)
        app = create_app(data, log, token=token, hosts=allowed_hosts(host, port), cookie=f"imgclf-review-{port}")
        url = f"http://{_url_host(host)}:{port}/?token={token}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=3,
        )
        server = uvicorn.Server(config)
        if on_ready is not None:
            on_ready(url)
        if open_browser:
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        server.run(sockets=[sock])
    finally:
        if sock is not None:
            sock.close()
        log.close()
