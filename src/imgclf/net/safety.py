"""Refusing network addresses a server must not be made to fetch from (SSRF protection).

A program that downloads a URL given by someone else (`imgclf serve --allow-urls`) can be
turned into a proxy towards the machine itself and its private network: `http://127.0.0.1:...`,
`http://169.254.169.254/` (cloud metadata), `http://10.0.0.5/admin`, or a public host name that
resolves to such an address (OWASP "Server-Side Request Forgery Prevention Cheat Sheet"). This
module is the one check imgclf uses:

- `address_problem(ip)`: why one IP address is not a public destination (loopback, private,
  link-local, multicast, reserved, unspecified, or otherwise not globally routable, per the
  IANA special-purpose registries as `ipaddress` knows them), or None. An IPv4-mapped IPv6
  address (`::ffff:127.0.0.1`) is judged as the IPv4 address it carries, and a 6to4 / Teredo
  address (`2002:7f00:1::`) also by the IPv4 address inside it.
- `check_host(host, port)`: resolves a host name with `socket.getaddrinfo` and checks **every**
  address it resolves to: one bad address refuses the host (a name resolving to both a public
  and a private address is refused), so the answer does not depend on which one is tried.
- `check_url(url)`: the same for the host of an http(s) URL.
- `guarded_session()`: a `requests.Session` that runs `check_host` **at connect time, on every
  connection**, and connects only to the addresses it checked. Every redirect hop of the
  downloader (`imgclf.net.fetch.fetch_bytes` follows redirects by hand, one `session.get` per
  hop) goes through it, and DNS rebinding (a name that resolves to a public
  address when checked and to a private one when connected) has no window, since the checked
  address is the one connected to. It uses no proxy (`trust_env` off): through a proxy the
  checked address would be the proxy's, not the destination's.

Refusals raise `UnsafeAddressError`, which names the host, the address and the range.

Only the standard library (`ipaddress`, `socket`) is used at module level; `guarded_session`
imports `requests` / `urllib3` when called.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from imgclf.errors import ImgclfError
from imgclf.net.session import DEFAULT_USER_AGENT, new_session

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Resolves `(host, port)` to the addresses that may be connected to, or raises
#: `UnsafeAddressError` (or `socket.gaierror` when the name does not resolve).
HostCheck = Callable[[str, int | None], list[str]]


class UnsafeAddressError(ImgclfError):
    """A host resolves to an address that must not be fetched from.

    Args:
        host: str. The host name or IP literal asked for.
        address: str. The offending resolved address.
        problem: str. Which range it is in, e.g. `"loopback"`, `"private"`, `"link-local"`.
    """

    def __init__(self, host: str, address: str, problem: str):
        self.host = host
        self.address = address
        self.problem = problem
        shown = host if host == address else f"{host} ({address})"
        super().__init__(
            f"{shown} is a {problem} address; fetching from it is refused (SSRF protection)",
            "use a public http(s) URL, or start the server with --allow-private-urls on a trusted network",
        )


def address_problem(ip: str | IPAddress) -> str | None:
    """Tells why an IP address is not a public destination, or None when it is one.

    Args:
        ip: str or ipaddress.IPv4Address / IPv6Address. E.g. `"10.1.2.3"`, `"::1"`. An IPv6
            scope (`"fe80::1%eth0"`) is allowed and ignored. IPv4-mapped, 6to4 and Teredo IPv6
            addresses are also judged by the IPv4 address they carry.

    Returns:
        str or None: `"unspecified"` (0.0.0.0, ::), `"loopback"` (127.0.0.0/8, ::1),
        `"link-local"` (169.254.0.0/16 -- cloud metadata lives there --, fe80::/10),
        `"multicast"`, `"private"` (10/8, 172.16/12, 192.168/16, fc00::/7, and the other
        ranges Python's `is_private` lists), `"reserved"` (240.0.0.0/4, ...), `"not globally
        routable"` (any other special-purpose range, e.g. 100.64.0.0/10 shared address space),
        or None for a global unicast address.

    Raises:
        ValueError: if `ip` is not an IP address.
    """
    addr = (
        ip
        if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address))
        else ipaddress.ip_address(str(ip).split("%", 1)[0])
    )
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        else:  # 6to4 and Teredo addresses carry an IPv4 address inside
            teredo = addr.teredo
            inner = addr.sixtofour if addr.sixtofour is not None else (teredo[1] if teredo is not None else None)
            problem = address_problem(inner) if inner is not None else None
            if problem is not None:
                return problem
    checks = (
        ("unspecified", addr.is_unspecified),
        ("loopback", addr.is_loopback),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("private", addr.is_private),
        ("reserved", addr.is_reserved),
        ("not globally routable", not addr.is_global),
    )
    for name, hit in checks:
        if hit:
            return name
    return None


def resolve(host: str, port: int | None = None) -> list[str]:
    """Every address `host` resolves to (TCP), in the resolver's order, without duplicates.

    Args:
        host: str. A host name or an IP literal (IPv6 with or without brackets).
        port: int or None, default None. Passed to `getaddrinfo` (does not change the result).

    Returns:
        list of str: IP addresses, e.g. `["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]`.

    Raises:
        socket.gaierror: if the name does not resolve.
    """
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in out:
            out.append(ip)
    return out


def check_host(host: str, port: int | None = None, *, allow_private: bool = False) -> list[str]:
    """Resolves `host` and refuses it if any address it resolves to is not public.

    Args:
        host: str. A host name or an IP literal.
        port: int or None, default None. The port (only passed to the resolver).
        allow_private: bool, default False. True accepts every address (the check is off).

    Returns:
        list of str: the resolved addresses, all checked; connect only to these.

    Raises:
        UnsafeAddressError: if one resolved address is loopback, private, link-local,
            multicast, reserved, unspecified or otherwise not globally routable.
        socket.gaierror: if the name does not resolve.
    """
    addresses = resolve(host, port)
    if not allow_private:
        for ip in addresses:
            problem = address_problem(ip)
            if problem is not None:
                raise UnsafeAddressError(host.strip("[]"), ip, problem)
    return addresses


def check_url(url: str, *, allow_private: bool = False) -> list[str]:
    """`check_host` for the host of an http(s) URL.

    Args:
        url: str. An `http://` or `https://` URL.
        allow_private: bool, default False. True accepts every address.

    Returns:
        list of str: the addresses the URL's host resolves to, all checked.

    Raises:
        ValueError: if `url` has no host.
        UnsafeAddressError: if an address is not public (see `check_host`).
        socket.gaierror: if the host does not resolve.
    """
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url!r}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return check_host(parts.hostname, port, allow_private=allow_private)


# ------------------------------------------------------------------- connect-time checking
_SESSION_CLASSES: dict[Any, type] = {}


def _guarded_adapter_class(check: HostCheck) -> type:
    """A `requests` HTTPAdapter class whose every new connection runs `check` first (cached)."""
    if check in _SESSION_CLASSES:
        return _SESSION_CLASSES[check]
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    def guarded(base: Any) -> type:
        class Guarded(base):
            _dns_host: str  # urllib3's name to resolve; swapped for each checked address below

            def _new_conn(self) -> Any:  # urllib3's one place where a socket is connected
                try:
                    addresses = check(self._dns_host, self.port)
                except socket.gaierror as exc:
                    raise NameResolutionError(self.host, self, exc) from exc
                name = self._dns_host
                last: Exception | None = None
                try:
                    for ip in addresses:  # connect to a checked address, never re-resolve
                        self._dns_host = ip
                        try:
                            return super()._new_conn()
                        except NewConnectionError as exc:
                            last = exc
                finally:
                    self._dns_host = name  # TLS SNI and certificate checks use the name
                raise last or NewConnectionError(self, f"no address to connect to for {name}")

        Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
        return Guarded

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = guarded(HTTPConnection)

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = guarded(HTTPSConnection)

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}

    _SESSION_CLASSES[check] = GuardedAdapter
    return GuardedAdapter


def _public_only(host: str, port: int | None) -> list[str]:
    return check_host(host, port)


def guarded_session(*, user_agent: str | None = None, pool: int = 16, check: HostCheck | None = None) -> Any:
    """A `requests.Session` that refuses non-public addresses on every connection it opens.

    Args:
        user_agent: str or None, default None (`imgclf.net.session.DEFAULT_USER_AGENT`).
        pool: int, default 16. Connections kept per host.
        check: callable `(host, port) -> list of addresses` or None, default None
            (`check_host` with `allow_private=False`). It must raise `UnsafeAddressError` to
            refuse; the connection is made to one of the addresses it returns.

    Returns:
        requests.Session without retries of its own and without proxies (`trust_env` off).
        A refused connection raises `UnsafeAddressError` out of `session.get(...)` (and out of
        `imgclf.net.image.fetch_image`, which passes unknown errors through); nothing is
        sent to the refused address.
    """
    session = new_session(user_agent or DEFAULT_USER_AGENT, pool=pool)
    session.trust_env = False
    session.proxies = {}
    adapter = _guarded_adapter_class(check or _public_only)(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
