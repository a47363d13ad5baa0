"""One webhook POST, safe against server-side request forgery; the one module importing aiohttp.

The host is resolved once, the address checked (loopback, private, link-local, which covers
cloud metadata at 169.254.169.254, multicast and reserved ones are refused unless
CATALOG_WEBHOOK_ALLOW_PRIVATE), and the connection goes to that very address: a pinned
resolver hands aiohttp the checked address, while TLS still verifies the host's name. No
redirect is followed, one total timeout bounds the attempt, and at most 64 KiB of the answer
is read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

MAX_ANSWER_BYTES = 64 * 1024
_DEFAULT_PORTS = {"https": 443, "http": 80}


class RefusedTarget(Exception):
    """The URL leads somewhere a webhook may not go; retrying cannot help."""


class DeliveryError(Exception):
    """An attempt failed (no answer, or not 2xx); a later attempt may succeed."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # its first MAX_ANSWER_BYTES


def address_refused(address: str) -> str:
    """Why a webhook may not reach `address` ("" when it may)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    kinds = (
        ("loopback", ip.is_loopback),
        ("link-local or metadata", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved or ip.is_unspecified),
    )
    found = next((name for name, hit in kinds if hit), "")
    return f"{found} address {ip} (set CATALOG_WEBHOOK_ALLOW_PRIVATE=1 to allow)" if found else ""


async def resolve_once(host: str, port: int, allow_private: bool) -> str:
    """The one address a delivery connects to."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as exc:
        raise DeliveryError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    address = str(found[0][4][0])
    why = "" if allow_private else address_refused(address)
    if why:
        raise RefusedTarget(f"{host} resolves to a {why}")
    return address


class _Pinned(AbstractResolver):
    """Answers every lookup with the address already resolved and checked."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._family = socket.AF_INET6 if ":" in address else socket.AF_INET

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=self._address,
                port=port,
                family=self._family,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


async def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout_s: float, allow_private: bool
) -> Answer:
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = await resolve_once(host, parts.port or _DEFAULT_PORTS[parts.scheme], allow_private)
    connector = aiohttp.TCPConnector(resolver=_Pinned(address), use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False
        ) as session:
            return await _send(session, url, body, headers)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(_describe(exc, timeout_s)) from exc


async def _send(session: Any, url: str, body: bytes, headers: dict[str, str]) -> Answer:
    async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
        excerpt = await response.content.read(MAX_ANSWER_BYTES)
        return Answer(response.status, excerpt)


def _describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
