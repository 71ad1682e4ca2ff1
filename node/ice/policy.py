"""The ICE policy of one call: where it may gather and whom it may accept (a value).

Addresses are parsed, never compared as text: `"127.0.0.1"` and `"127.000.000.001"`
are not the same string, and `"10.0.0.1"` is a substring of `"10.0.0.10"`."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import PrivacyError
from ..overlay import parse_address

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def literal_ip(text: str) -> IPAddress | None:
    """A literal, unzoned IP address, else None ("x.local", names, "fe80::1%eth0"). In
    SDP an address is never bracketed ("[::1]" is refused, not unwrapped)."""
    if not isinstance(text, str) or "[" in text or "]" in text:
        return None
    return parse_address(text)


def _ips(addresses: Iterable[str], what: str) -> tuple[IPAddress, ...]:
    out = []
    for a in addresses:
        ip = literal_ip(str(a))
        if ip is None or ip.is_unspecified or ip.is_multicast:
            raise PrivacyError(f"ICE policy: {what} address {a!r} is not a usable IP address")
        out.append(ip)
    return tuple(out)


@dataclass(frozen=True)
class IcePolicy:
    """Where one call may gather and whom it may accept. `local`: this node's overlay
    address(es); `remote`: the peer's overlay address(es) as resolved locally.
    `rewrite_remote`: the peer's candidates carry its own node-local view of its address
    (the provider says so), so a candidate on the address it reports is rewritten to
    `remote[0]`."""

    local: tuple[IPAddress, ...]
    remote: tuple[IPAddress, ...]
    rewrite_remote: bool = False
    label: str = field(default="", compare=False)  # for logs: a peer name, never an address

    @classmethod
    def make(
        cls,
        local: Iterable[str],
        remote: Iterable[str],
        *,
        rewrite_remote: bool = False,
        label: str = "",
    ) -> IcePolicy:
        policy = cls(_ips(local, "local"), _ips(remote, "remote"), rewrite_remote, label)
        if not policy.local:
            raise PrivacyError("ICE policy: no local overlay address (is the overlay up?)")
        if not policy.remote:
            raise PrivacyError("ICE policy: no remote overlay address for the peer")
        return policy

    def is_local(self, address: str) -> bool:
        return literal_ip(address) in self.local

    def is_remote(self, address: str) -> bool:
        return literal_ip(address) in self.remote


__all__ = ["IPAddress", "IcePolicy", "PrivacyError", "literal_ip"]
