"""The static provider: an overlay you name yourself (Nebula, WireGuard, ZeroTier, a lab
veth, or loopback for the embedded demo). Own address from config or from an interface;
peers' addresses come from the allowlist (`peers add --address`)."""

from __future__ import annotations

import ipaddress
import logging
import socket

import ifaddr

from ..peers import Peer
from . import IPAddress, OverlayError, OverlayProvider, parse_address, usable_unicast
from .local import missing_binding

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
log = logging.getLogger(__name__)


def _parse_cidr(cidr: str) -> IPNetwork | None:
    if not cidr:
        return None
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise OverlayError(f"[overlay] cidr {cidr!r} is not a network like 100.64.0.0/10") from None


def interface_addresses(name: str) -> list[IPAddress] | None:
    """The addresses on interface `name` (None if there is no such interface). IPv6
    link-local ones are left out: they need a zone, and aioice never gathers them."""
    for adapter in ifaddr.get_adapters():
        if adapter.name != name:
            continue
        found: list[IPAddress] = []
        for entry in adapter.ips:
            text = entry.ip if isinstance(entry.ip, str) else entry.ip[0]
            ip = parse_address(text)
            if ip is not None and usable_unicast(ip):
                found.append(ip)
        return found
    return None


def is_local(ip: IPAddress) -> bool:
    """True if this machine owns `ip`: binding a UDP socket to it succeeds. Sends nothing."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((str(ip), 0))
        return True
    except OSError:
        return False


class StaticProvider(OverlayProvider):
    name = "static"

    def __init__(self, address: str = "", interface: str = "", cidr: str = ""):
        self.cidr = _parse_cidr(cidr)
        self.interface = interface
        self.address: IPAddress | None = None
        if address:
            ip = parse_address(address)
            if ip is None or not usable_unicast(ip):
                raise OverlayError(f"[overlay] address {address!r} is not a usable unicast IP address")
            if self.cidr is not None and ip not in self.cidr:
                raise OverlayError(f"[overlay] address {ip} is outside [overlay] cidr {self.cidr}")
            self.address = ip
        elif not interface:
            raise OverlayError(
                "the static overlay needs [overlay] address or [overlay] interface in config.toml "
                "(the address this node has on its overlay, or the interface that carries it)"
            )
        # Loopback is the embedded demo's overlay; it counts only when named outright.
        self.loopback_ok = bool(
            (self.address is not None and self.address.is_loopback)
            or interface == "lo"
            or (self.cidr is not None and self.cidr.is_loopback)
        )
        # Addresses this provider has handed out (own, and peers' from the allowlist):
        # without a cidr, exactly these are "on the overlay".
        self._known: set[IPAddress] = set()
        if self.address is not None:
            self._known.add(self.address)
        if self.cidr is None and not self.loopback_ok:
            log.warning(
                "[overlay] cidr is not set: the allowlist's peer addresses are taken as overlay "
                "addresses as written; set cidr (e.g. 100.64.0.0/10) to have each one checked"
            )

    async def local_address(self) -> str:
        if self.address is not None:
            if not is_local(self.address):
                raise OverlayError(
                    f"overlay address {self.address} is not on this machine: is the overlay up?"
                )
            return str(self.address)
        found = interface_addresses(self.interface)
        if found is None:
            raise OverlayError(f"overlay interface {self.interface!r} does not exist: is the overlay up?")
        if self.cidr is not None:
            found = [ip for ip in found if ip in self.cidr]
        if not found:
            where = f" inside {self.cidr}" if self.cidr is not None else ""
            raise OverlayError(
                f"overlay interface {self.interface!r} has no address{where}: is the overlay up?"
            )
        self._known.add(found[0])
        return str(found[0])

    async def resolve(self, peer: Peer) -> str:
        if not peer.address:
            raise missing_binding(peer, "overlay address", "--address ADDR")
        ip = parse_address(peer.address)
        if ip is None or not usable_unicast(ip):
            raise OverlayError(f"peer {peer.name!r}: {peer.address!r} is not a usable unicast IP address")
        if self.cidr is not None and ip not in self.cidr:
            raise OverlayError(f"peer {peer.name!r}: address {ip} is outside the overlay {self.cidr}")
        if ip.is_loopback and not self.loopback_ok:
            raise OverlayError(
                f"peer {peer.name!r}: {ip} is loopback; loopback is an overlay only when this node's "
                "[overlay] address, interface (lo) or cidr names it"
            )
        self._known.add(ip)
        return str(ip)

    def is_overlay(self, address: str) -> bool:
        ip = parse_address(address)
        if ip is None or not usable_unicast(ip):
            return False
        if self.cidr is not None:
            return ip in self.cidr
        return ip in self._known
