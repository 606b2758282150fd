"""Robots directives of a response: `X-Robots-Tag` headers, robots `<meta>` content, our product token.

The "noai" convention (honoured by img2dataset) reuses Google's documented `X-Robots-Tag`
syntax: `X-Robots-Tag: noai`, or `X-Robots-Tag: <token>: noai` for one crawler only.
"""

from __future__ import annotations

import re
from typing import Any

#: `X-Robots-Tag` / `<meta name="robots">` directives that ask for no use in AI training
#: (the "noai" convention, honoured by img2dataset). Checked when `respect_noai` is on.
NOAI_DIRECTIVES: frozenset[str] = frozenset({"noai", "noimageai"})

#: Directives whose value follows a colon (Google's list), so `name:` is not a user agent.
_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_UA_PREFIX = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*:\s*(.*)$", re.S)


def product_token(user_agent: str) -> str:
    """Returns the product token of a User-Agent, e.g. `"imgclf"` for `"imgclf/0.1 (...)"`.

    robots.txt groups (RFC 9309 §2.2.1), `X-Robots-Tag: <token>: ...` and
    `<meta name="<token>">` are matched against this token, case-insensitively.

    Args:
        user_agent: str. The full User-Agent header.

    Returns:
        str: the leading run of letters, digits, `_` and `-` (RFC 9309 §2.2.1), lower case;
        `"*"` if there is none.
    """
    m = re.match(r"[A-Za-z0-9_-]+", user_agent.strip())
    return m.group(0).lower() if m else "*"


def robots_directives(values: list[str] | tuple[str, ...], token: str | None = None) -> frozenset[str]:
    """Parses `X-Robots-Tag` header values (or a robots `<meta>` content) into directives.

    A value may start with a user-agent token (`"otherbot: noai"`); it then applies only if
    that token is ours. Several directives are separated by commas. This follows Google's
    documented `X-Robots-Tag` syntax, which the "noai" convention reuses.

    Args:
        values: list of str. One entry per header line (or the meta tag's `content`).
        token: str or None, default None. Our product token (see `product_token`); None
            treats every user-agent-prefixed value as not ours.

    Returns:
        frozenset of str: the directives that apply to us, lower case, without values
        (`"unavailable_after: ..."` gives `"unavailable_after"`).
    """
    out: set[str] = set()
    for value in values:
        if not value:
            continue
        text = str(value)
        m = _UA_PREFIX.match(text)
        if m and m.group(1).lower() not in _VALUED_DIRECTIVES:
            if token is None or m.group(1).lower() != token.lower():
                continue
            text = m.group(2)
        for part in text.split(","):
            name = part.split(":", 1)[0].strip().lower()
            if name:
                out.add(name)
    return frozenset(out)


def header_lines(resp: Any, name: str) -> list[str]:
    """Every line of header `name` of a `requests` response (urllib3 keeps repeated headers apart;
    requests joins them with commas).

    Args:
        resp: requests.Response.
        name: str. Header name, e.g. `"X-Robots-Tag"` (case-insensitive).

    Returns:
        list of str: one entry per header line, `[]` when absent.
    """
    raw_headers = getattr(getattr(resp, "raw", None), "headers", None)
    getlist = getattr(raw_headers, "getlist", None)
    if callable(getlist):
        try:
            return [str(v) for v in getlist(name)]
        except Exception:  # noqa: BLE001 - an unusual headers object: fall back to the joined value
            pass
    v = resp.headers.get(name)
    return [v] if v else []
