"""Who is on the other end: the client's address, read through the proxies we trust.

Behind an ingress every request arrives from the ingress's own address, with the client's in
`X-Forwarded-For` or `Forwarded`. Anyone can send those headers, so they are read only when the
request came from a configured proxy network (BR_TRUSTED_PROXIES, CIDRs; default: none, the
socket peer is the client), and then only as far as BR_TRUSTED_PROXY_HOPS entries back from the
right, where the proxies we trust wrote them: the first address that is not a trusted proxy is
the client's. What a client writes at the left of the header is never believed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Forwarded: for=192.0.2.60 | for="[2001:db8::1]:4711" | for="192.0.2.43:47011" (RFC 7239)
_FORWARDED_FOR = re.compile(r'(?i)(?:^|[;,\s])for=("?)([^";,\s]+)\1')


class ProxyConfigError(ValueError):
    """BR_TRUSTED_PROXIES or BR_TRUSTED_PROXY_HOPS does not parse."""


def _address(text: str) -> IPAddress | None:
    """An address as a header writes it (a port, brackets, an IPv4 port), or None."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class ProxyTrust:
    networks: tuple[IPNetwork, ...] = ()
    hops: int = 1

    @classmethod
    def parse(cls, cidrs: str, hops: int = 1) -> ProxyTrust:
        try:
            networks = tuple(
                ipaddress.ip_network(c.strip(), strict=False) for c in cidrs.split(",") if c.strip()
            )
        except ValueError as exc:
            raise ProxyConfigError(f"BR_TRUSTED_PROXIES: {exc}") from exc
        if not 1 <= hops <= 10:
            raise ProxyConfigError("BR_TRUSTED_PROXY_HOPS must be between 1 and 10")
        return cls(networks, hops)

    def trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client's address for a request from `peer` carrying `headers`."""
        if not self.networks:
            return peer or "unknown"
        current = _address(peer or "")
        if not self.trusts(current):
            return peer or "unknown"  # not from a proxy we trust: its headers mean nothing
        chain = _forwarded_chain(headers)
        for _ in range(self.hops):
            if not chain:
                break
            hop = _address(chain.pop())
            if hop is None:
                break  # unreadable: stop at the last address a trusted proxy vouched for
            current = hop
            if not self.trusts(hop):
                break  # the first address that is not one of our proxies: the client
        return str(current)


def _lines(headers: Mapping[str, str], name: str) -> list[str]:
    if hasattr(headers, "getall"):  # aiohttp's: a header may come in several lines
        return headers.getall(name, [])
    value = headers.get(name)
    return [value] if value else []


def _forwarded_chain(headers: Mapping[str, str]) -> list[str]:
    """The addresses a request passed through, the nearest last (Forwarded, else X-Forwarded-For;
    every header line of it, in order)."""
    forwarded = _lines(headers, "Forwarded")
    if forwarded:
        return [m.group(2) for line in forwarded for m in _FORWARDED_FOR.finditer(line)]
    return [part for line in _lines(headers, "X-Forwarded-For") for part in line.split(",") if part.strip()]
