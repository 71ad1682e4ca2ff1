"""Overlay providers: where this node's overlay address comes from, and how a peer's
overlay address is found *locally* (never taken from what the peer claims).

One provider per node, passed in (never a global), so two nodes on different overlays
can live in one process. The ICE policy gathers only on `local_address()` and accepts
remote candidates only equal to `resolve(peer)`."""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ..errors import NodeError

if TYPE_CHECKING:
    from ..config import OverlaySection
    from ..peers import Peer

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OverlayError(NodeError):
    """The overlay is down, misconfigured, or cannot place a peer: the node sends nothing."""


def parse_address(address: str) -> IPAddress | None:
    """A literal IP address, or None for anything else (names, `.local`, zoned addresses).
    Addresses are compared as parsed values, never as text (Copybara's substring bug)."""
    if not isinstance(address, str) or "%" in address:
        return None
    try:
        return ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None


def usable_unicast(ip: IPAddress) -> bool:
    """Addresses a call can never use: unspecified, multicast, and IPv6 link-local (it
    needs a zone, and aioice skips it)."""
    if ip.is_unspecified or ip.is_multicast:
        return False
    return not (ip.version == 6 and ip.is_link_local)


class OverlayProvider(ABC):
    """What the call path needs from an overlay (docs/architecture.md, "Overlay")."""

    name: str = ""
    # True when the provider's addresses mean something only on the node that holds
    # them (the same peer resolves differently on different nodes): a peer's candidate
    # on the address it reports is then rewritten to the address resolved here.
    node_local_addresses: bool = False

    @abstractmethod
    async def local_address(self) -> str:
        """This node's overlay address; raises OverlayError when the overlay is down."""

    @abstractmethod
    async def resolve(self, peer: Peer) -> str:
        """The peer's overlay address as this node resolves it (allowlist binding, key
        derivation or the local resolver); raises OverlayError when it cannot."""

    @abstractmethod
    def is_overlay(self, address: str) -> bool:
        """True only when the provider can prove `address` is on its overlay."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def make_provider(section: OverlaySection) -> OverlayProvider:
    """The provider named by config [overlay]; configuration errors raise OverlayError."""
    if section.provider == "static":
        from .static import StaticProvider

        return StaticProvider(address=section.address, interface=section.interface, cidr=section.cidr)
    if section.provider == "yggdrasil":
        from .yggdrasil import YggdrasilProvider

        return YggdrasilProvider(section.yggdrasil_admin)
    if section.provider == "staex":
        from .staex import StaexProvider

        return StaexProvider(command=section.staex_command, http=section.staex_http)
    if section.provider == "wireguard":
        from .wireguard import WireGuardProvider

        return WireGuardProvider(section.wireguard_interface, section.wireguard_peers)
    if section.provider == "nebula":
        from .nebula import NebulaProvider

        return NebulaProvider(section.nebula_config, section.nebula_certs, section.nebula_cert_command)
    if section.provider == "tailscale":
        from .tailscale import TailscaleProvider

        return TailscaleProvider(section.tailscale_socket)
    raise OverlayError(
        f"unknown overlay provider {section.provider!r}; choose static, yggdrasil, staex, "
        "wireguard, nebula or tailscale"
    )


__all__ = ["OverlayError", "OverlayProvider", "make_provider", "parse_address", "usable_unicast"]
