"""Outbound HTTP to addresses that tenants and employees choose (webhooks, Web Push endpoints).

Whoever picks the URL picks where this service connects, so every request:

- connects only to public addresses, checked on the address actually connected to, after DNS
  resolution (a name that resolves to 127.0.0.1 or to 169.254.169.254 is refused at connect
  time, so DNS rebinding between a check and the connect cannot pass); environment proxies are
  ignored, since a proxy would resolve the name beyond this check;
- follows no redirects (a 3xx is an answer, not an instruction);
- reads at most ``max_response_bytes`` of the answer, within one total deadline;
- waits for a slot of its own endpoint (``per_endpoint`` requests at a time per origin) within
  that same deadline, so a slow endpoint holds up only its own deliveries.

Errors are in this service's words (what failed), never the remote side's text.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpcore
import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: NAT64 (RFC 6052) embeds an IPv4 address in the last 32 bits: judge that address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def refusal(address: str) -> str | None:
    """Why a connection to ``address`` is refused, or None for a public unicast address.

    Loopback, private (RFC 1918, unique local), shared (RFC 6598, where some clouds put their
    metadata service), link-local (169.254.169.254, the usual cloud metadata address), multicast,
    reserved, unspecified: anything that ``ipaddress`` does not call global.
    """
    ip: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved or ip.is_unspecified),
    ):
        if flag:
            return f"{kind} address"
    if not ip.is_global:
        return "non-public address"
    return None


async def host_refusal(url: str, *, timeout_s: float = 5.0) -> str | None:
    """Why ``url``'s host is no outbound destination (checked when it is configured), or None.

    The same rule as at connect time (every address the name resolves to is judged); the check
    at connect time still runs on every request, since a name can change what it resolves to.
    """
    host = urlsplit(url).hostname
    if not host:
        return "the URL names no host"
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return f"{host} cannot be resolved"
    for address in dict.fromkeys(str(info[4][0]) for info in infos):
        why = refusal(address)
        if why is not None:
            return f"{host} resolves to a {why}; only public addresses are allowed"
    return None


class BlockedAddress(httpcore.ConnectError):
    """Every address the host resolves to is refused."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"{host} resolves to a {why}; only public addresses are allowed")
        self.host = host
        self.why = why


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the address check between resolving and connecting.

    TLS still verifies the URL's host name: httpcore passes it to ``start_tls`` on its own.
    """

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed, why = [], "non-public address"
        for address in addresses:
            problem = None if self._allow_private else refusal(address)
            if problem is None:
                allowed.append(address)
            else:
                why = problem
        if not allowed:
            raise BlockedAddress(host, why)
        last: Exception | None = None
        for address in allowed:  # connect to the checked address itself, never the name again
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that uses the GuardedBackend."""

    def __init__(self, *, allow_private: bool, max_connections: int) -> None:
        super().__init__(retries=0)
        # httpx offers no network_backend parameter; its transport only wraps this pool.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow_private=allow_private),
        )


FailureKind = Literal["refused", "timeout", "unreachable", "invalid_url"]


@dataclass(frozen=True)
class OutboundFailure:
    """No answer: what failed, in this service's words (safe to show the subscriber)."""

    kind: FailureKind
    detail: str


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    body: bytes  # at most max_response_bytes
    truncated: bool

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def describe(self) -> str:
        """The answer's status in words, without its content."""
        if 300 <= self.status_code < 400:
            return f"answered {self.status_code}; redirects are not followed"
        return f"answered {self.status_code}"


class OutboundClient:
    def __init__(
        self,
        *,
        allow_private: bool,
        max_response_bytes: int,
        per_endpoint: int,
        max_connections: int = 100,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self._per_endpoint = per_endpoint
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(
                allow_private=allow_private, max_connections=max_connections
            ),
            follow_redirects=False,
            trust_env=False,  # no HTTP(S)_PROXY: a proxy would connect beyond the address check
        )

    def _slot(self, origin: str) -> asyncio.Semaphore:
        slot = self._slots.get(origin)
        if slot is None:
            if len(self._slots) > 10_000:  # forget idle endpoints (their semaphores are free)
                self._slots = {k: s for k, s in self._slots.items() if s.locked()}
            slot = self._slots[origin] = asyncio.Semaphore(self._per_endpoint)
        return slot

    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str], deadline_s: float
    ) -> OutboundResponse | OutboundFailure:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return OutboundFailure("invalid_url", "not an absolute http(s) URL")
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"
        slot = self._slot(origin)
        started = False
        try:
            # The deadline covers the wait for a slot too: a backlog at one slow endpoint turns
            # into retries of its own deliveries, never into a round that waits for it.
            async with asyncio.timeout(deadline_s), slot:
                started = True
                return await self._post(url, content, headers, deadline_s)
        except TimeoutError:
            if not started:
                return OutboundFailure(
                    "timeout", f"endpoint busy ({self._per_endpoint} at a time, all in flight)"
                )
            return OutboundFailure("timeout", f"no complete answer within {deadline_s:g} s")
        except httpx.InvalidURL:
            return OutboundFailure("invalid_url", "not a valid URL")
        except httpx.HTTPError as exc:
            cause = exc.__cause__
            if isinstance(cause, BlockedAddress):
                return OutboundFailure("refused", f"refused: {cause}")
            if isinstance(exc, httpx.TimeoutException):
                return OutboundFailure("timeout", f"timed out ({type(exc).__name__})")
            return OutboundFailure(
                "unreachable", f"could not reach {parts.hostname} ({type(exc).__name__})"
            )

    async def _post(
        self, url: str, content: bytes, headers: Mapping[str, str], deadline_s: float
    ) -> OutboundResponse:
        body = bytearray()
        truncated = False
        async with self._client.stream(
            "POST", url, content=content, headers=dict(headers), timeout=deadline_s
        ) as response:
            async for chunk in response.aiter_raw():
                room = self.max_response_bytes - len(body)
                if len(chunk) > room:
                    body += chunk[:room]
                    truncated = True
                    break  # closing the stream drops the rest (and the connection)
                body += chunk
        return OutboundResponse(response.status_code, bytes(body), truncated)

    async def close(self) -> None:
        await self._client.aclose()
