"""The HTTP session every download uses: our User-Agent, no retries of its own, a connection pool."""

from __future__ import annotations

from typing import Any

#: User-Agent sent with every request (Reddit and many sites refuse the python-requests default).
DEFAULT_USER_AGENT: str = "imgclf/0.1 (image-classification dataset builder)"


def new_session(user_agent: str = DEFAULT_USER_AGENT, pool: int = 16) -> Any:
    """Returns a `requests.Session` for the downloader.

    `trust_env` stays on, so standard `HTTP(S)_PROXY` / `NO_PROXY` settings are honoured
    (`imgclf.net.safety.guarded_session` turns it off).

    Args:
        user_agent: str, default `DEFAULT_USER_AGENT`. The `User-Agent` header.
        pool: int, default 16. Connections kept per host.

    Returns:
        requests.Session with no retries of its own (the downloader retries, within its budget).
    """
    import requests
    from requests.adapters import HTTPAdapter

    s = requests.Session()
    s.headers["User-Agent"] = user_agent
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s
