"""The driver's side of a Ray cluster's head: token authentication, and noticing a lost head.

Token authentication. `ray start --head` turns Ray's token authentication on by default
(Ray 2.59 and later: a token in `~/.ray/auth_token`, made when the head starts). A driver that
connects to an address (`--ray-address`, `RAY_ADDRESS`) sends the token only when
`RAY_AUTH_MODE=token` is set: Ray never turns it on by itself for an explicit address (a token
is not sent where the user did not mean), and imgclf does not either -- nor can it guess, since
a driver in token mode breaks on a cluster without token authentication (its workers cannot
reach the objects the driver owns: measured, `OwnerDiedError` on the second block). When the
connection fails and the mode is not set, `auth_hint` adds to the one-line error how to set it.
Token sources, in Ray's order: `RAY_AUTH_TOKEN`, the file `RAY_AUTH_TOKEN_PATH`,
`~/.ray/auth_token` (https://docs.ray.io/en/latest/ray-security/token-auth.html).

A lost head. When the head node (its control store, the GCS) dies, Ray's driver library waits
`RAY_gcs_rpc_server_reconnect_timeout_s` seconds (60 by default) for it to come back and then
ends the process from a thread of its own, with a line of its log that does not say what to
do. `watch_head` watches the head's port from a thread of the driver and, once the head has
not answered for `grace` seconds (5 fewer than Ray's timeout), prints imgclf's one-line error
-- nothing is half-written (every file is written under a temporary name and renamed), run the
same command again once the head is back -- and ends the process first.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable

#: Exit code of a command whose cluster's head was lost (that of every imgclf error).
EXIT_LOST_HEAD = 1
#: Ray's own wait for a lost head (seconds), when `RAY_gcs_rpc_server_reconnect_timeout_s` is unset.
RAY_RECONNECT_TIMEOUT = 60.0
#: Ray's setting of its wait for a lost head (an environment variable; Ray's own lower-case name).
RECONNECT_VAR = "RAY_gcs_rpc_server_reconnect_timeout_s"
#: Seconds between two checks of the head's port.
WATCH_INTERVAL = 1.0


def auth_hint() -> str:
    """The part of a failed connection's hint about token authentication ("" when it is set)."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ""
    return (
        "; if the cluster uses token authentication (the default of `ray start --head`), "
        "export RAY_AUTH_MODE=token, with the head's token in ~/.ray/auth_token or RAY_AUTH_TOKEN "
        "(`ray get-auth-token` on the head prints it)"
    )


def reconnect_timeout() -> float:
    """Ray's wait for a lost head, in seconds (`RAY_gcs_rpc_server_reconnect_timeout_s`, default 60)."""
    try:
        return float(os.environ.get(RECONNECT_VAR, RAY_RECONNECT_TIMEOUT))
    except ValueError:
        return RAY_RECONNECT_TIMEOUT


def _answers(host: str, port: int, timeout: float) -> bool:
    """True when something accepts a TCP connection at `host:port` within `timeout` seconds."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _lost(address: str, seconds: float) -> None:
    """Prints the one-line error of a lost head and ends the process."""
    from imgclf.ui import console

    console.print(
        f"[bold red]error:[/] lost the Ray cluster's head at {address} (no answer for {seconds:.0f} s)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "  [dim]hint:[/] nothing is half-written; start the head again (`ray start --head`) "
        "and run the same command: it starts the interrupted stage again",
        highlight=False,
        soft_wrap=True,
    )
    sys.stderr.flush()
    os._exit(EXIT_LOST_HEAD)


def watch_head(
    address: str,
    host: str,
    port: int,
    *,
    grace: float | None = None,
    interval: float = WATCH_INTERVAL,
    on_lost: Callable[[str, float], None] = _lost,
) -> threading.Event:
    """Watches the head's port from a daemon thread; calls `on_lost` once it stops answering.

    Args:
        address: str. The address as the user gave it (for the message).
        host, port: str, int. Where the head's control store listens.
        grace: float or None, default None. Seconds without an answer before `on_lost`; None =
            Ray's own timeout (`reconnect_timeout`) minus 5 s, at least 5 s.
        interval: float, default 1. Seconds between two checks.
        on_lost: callable `(address, seconds) -> None`, default: print imgclf's one-line error
            and end the process (exit code 1).

    Returns:
        threading.Event: set it to stop watching (when the command disconnects).
    """
    limit = grace if grace is not None else max(5.0, reconnect_timeout() - 5.0)
    stop = threading.Event()

    def run() -> None:
        since: float | None = None
        while not stop.wait(interval):
            if _answers(host, port, timeout=min(2.0, interval * 2)):
                since = None
                continue
            now = time.monotonic()
            since = since if since is not None else now
            if now - since >= limit and not stop.is_set():
                on_lost(address, now - since)
                return

    threading.Thread(target=run, name="imgclf-head-watch", daemon=True).start()
    return stop
