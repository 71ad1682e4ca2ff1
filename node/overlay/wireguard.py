"""The WireGuard provider. WireGuard's cryptokey routing is the binding: a packet from
address X is accepted only from the peer whose allowed IPs hold X, and a packet to X is
encrypted only to that peer. So the allowlist names the peer's WireGuard public key,
and the peer's address is that key's single-host allowed IP (/32 or /128) on this
node's interface. A key with no single-host allowed IP (a hub routing a whole subnet
could be anyone behind it), or whose address another key also lists, is refused.
This node's address is the interface's own."""

from __future__ import annotations

from pathlib import Path

from ..peers import Peer
from . import IPAddress, OverlayError, OverlayProvider, parse_address
from .local import missing_binding
from .static import interface_addresses
from .wgtable import PeerTable, is_single_host, read_table, wireguard_key

IFF_UP = 0x1


def interface_up(name: str, sysfs: Path = Path("/sys/class/net")) -> bool | None:
    """True/False from the interface's IFF_UP flag; None when there is no such interface."""
    try:
        return bool(int((sysfs / name / "flags").read_text().strip(), 16) & IFF_UP)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return False


class WireGuardProvider(OverlayProvider):
    name = "wireguard"

    def __init__(self, interface: str = "wg0", peers_file: str = "/run/media-node-wireguard/wg0.peers"):
        if not interface or "/" in interface:
            raise OverlayError(f"[overlay] wireguard_interface {interface!r} is not an interface name")
        self.interface = interface
        self.peers_file = Path(peers_file)
        self._own: IPAddress | None = None
        self._table = PeerTable()

    def table(self) -> PeerTable:
        """The exported table, read fresh (a re-export takes effect at once)."""
        table = read_table(self.peers_file)
        if table.interface and table.interface != self.interface:
            raise OverlayError(
                f"{self.peers_file} is the peer table of {table.interface}, not of {self.interface}"
            )
        self._table = table
        return table

    def own_address(self) -> IPAddress:
        up = interface_up(self.interface)
        if up is None:
            raise OverlayError(f"WireGuard interface {self.interface!r} does not exist: is it up?")
        if not up:
            raise OverlayError(
                f"WireGuard interface {self.interface} is down (ip link set {self.interface} up)"
            )
        found = interface_addresses(self.interface) or []
        if not found:
            raise OverlayError(f"WireGuard interface {self.interface} has no address")
        # IPv4 first when the interface has both: one family per call, and peers'
        # single-host allowed IPs are picked in the same family.
        found.sort(key=lambda ip: ip.version)
        self._own = found[0]
        return found[0]

    async def local_address(self) -> str:
        return str(self.own_address())

    async def local_key(self) -> str:
        """This node's WireGuard public key (what peers put in their allowlist)."""
        key = self.table().public_key
        if not key:
            raise OverlayError(f"{self.peers_file} does not name this node's public key")
        return key

    def _hosts(self, peer: Peer, table: PeerTable) -> list[IPAddress]:
        key = wireguard_key(peer.wireguard_key)
        if not peer.wireguard_key or key is None:
            raise missing_binding(peer, "wireguard_key", "--wireguard-key KEY")
        if key not in table.peers:
            raise OverlayError(
                f"peer {peer.name!r}: WireGuard key {key} is not a peer of {self.interface} "
                "(wrong key in the allowlist, or the peer table is out of date)"
            )
        hosts = [n.network_address for n in table.peers[key] if is_single_host(n)]
        if not hosts:
            listed = ", ".join(str(n) for n in table.peers[key]) or "none"
            raise OverlayError(
                f"peer {peer.name!r}: its WireGuard key has no single-host allowed IP on "
                f"{self.interface} (allowed IPs: {listed}); give it a /32 or /128 of its own"
            )
        return hosts

    async def resolve(self, peer: Peer) -> str:
        table = self.table()
        hosts = self._hosts(peer, table)
        if len(hosts) > 1:
            family = (self._own or self.own_address()).version
            hosts = [ip for ip in hosts if ip.version == family]
            if len(hosts) != 1:
                raise OverlayError(
                    f"peer {peer.name!r}: its WireGuard key has {len(hosts) or 'no'} single-host "
                    f"allowed IPs of this node's address family on {self.interface}; keep exactly one"
                )
        ip = hosts[0]
        others = [k for k in table.owners(ip) if k != wireguard_key(peer.wireguard_key)]
        if others:
            raise OverlayError(
                f"peer {peer.name!r}: address {ip} is listed for another WireGuard key too "
                f"({others[0]}); refusing an address two keys claim"
            )
        return str(ip)

    def is_overlay(self, address: str) -> bool:
        ip = parse_address(address)
        if ip is None:
            return False
        return ip == self._own or self._table.covers(ip)


__all__ = ["WireGuardProvider", "interface_up"]
