"""The Tailscale provider. Tailscale is WireGuard with a coordination service handing out
node keys and addresses; tailscaled knows, for each peer node key, the addresses its
WireGuard accepts from that key. So the allowlist names the peer's node key
(`nodekey:HEX`) or its stable node id, and the peer's address is the one tailscaled
reports for exactly that peer in its local API (`GET /localapi/v0/status` over its
unix socket); this node's address comes from the same reply. Never the MagicDNS name:
the node makes no DNS lookups. Only addresses in Tailscale's ranges (100.64.0.0/10,
fd7a:115c:a1e0::/48) count.

The status also lists peers' underlay endpoints (Addrs, CurAddr) and DERP relays: they
are never read into anything this node sends or logs."""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import json
import socket
from dataclasses import dataclass

from ..peers import Peer
from . import IPAddress, OverlayError, OverlayProvider, parse_address
from .local import missing_binding

TIMEOUT = 3.0
MAX_STATUS = 8 << 20
TAILSCALE_RANGES = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("fd7a:115c:a1e0::/48"))
SERVICE_IP = ipaddress.ip_address("100.100.100.100")  # tailscaled's own (MagicDNS), never a node
STATUS_PATH = "/localapi/v0/status"


def in_tailscale_range(ip: IPAddress) -> bool:
    return ip != SERVICE_IP and any(ip in net for net in TAILSCALE_RANGES)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        # tailscaled routes its local API by this Host name.
        super().__init__("local-tailscaled.sock", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class TailscaleNode:
    key: str  # nodekey:HEX
    stable_id: str
    addresses: tuple[IPAddress, ...]


def _node(entry: object) -> TailscaleNode | None:
    if not isinstance(entry, dict):
        return None
    ips = entry.get("TailscaleIPs") or []
    found = []
    for text in ips if isinstance(ips, list) else []:
        ip = parse_address(str(text))
        if ip is not None and in_tailscale_range(ip):
            found.append(ip)
    found.sort(key=lambda ip: ip.version)  # IPv4 first, as `tailscale ip` prints
    return TailscaleNode(str(entry.get("PublicKey") or ""), str(entry.get("ID") or ""), tuple(found))


@dataclass(frozen=True)
class TailscaleStatus:
    backend: str
    self_node: TailscaleNode | None
    peers: tuple[TailscaleNode, ...]

    @classmethod
    def parse(cls, data: object) -> TailscaleStatus:
        if not isinstance(data, dict):
            raise OverlayError("tailscaled's status is not a JSON object")
        peers = data.get("Peer") or {}
        if not isinstance(peers, dict):
            raise OverlayError("tailscaled's status: Peer is not a map")
        found = []
        for key, entry in peers.items():
            node = _node(entry)
            if node is not None:
                # The map key is the node key; PublicKey repeats it.
                found.append(TailscaleNode(node.key or str(key), node.stable_id, node.addresses))
        return cls(str(data.get("BackendState") or ""), _node(data.get("Self")), tuple(found))


class TailscaleProvider(OverlayProvider):
    name = "tailscale"

    def __init__(self, socket_path: str = "/var/run/tailscale/tailscaled.sock", timeout: float = TIMEOUT):
        if not socket_path.startswith("/"):
            raise OverlayError(f"[overlay] tailscale_socket {socket_path!r}: use an absolute path")
        self.socket_path = socket_path
        self.timeout = timeout
        self._known: set[IPAddress] = set()

    def _get_sync(self) -> bytes:
        conn = _UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            conn.request("GET", STATUS_PATH, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read(MAX_STATUS + 1)
            if response.status != 200:
                raise OverlayError(f"tailscaled {STATUS_PATH}: HTTP {response.status}")
            if len(body) > MAX_STATUS:
                raise OverlayError(f"tailscaled {STATUS_PATH}: reply larger than {MAX_STATUS} bytes")
            return body
        finally:
            conn.close()

    async def status(self) -> TailscaleStatus:
        try:
            raw = await asyncio.wait_for(asyncio.to_thread(self._get_sync), self.timeout + 1)
        except OverlayError:
            raise
        except PermissionError:
            raise OverlayError(f"tailscaled's socket {self.socket_path}: permission denied") from None
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise OverlayError(
                f"tailscaled's local API {self.socket_path} unreachable ({e or type(e).__name__}): "
                "is tailscaled running?"
            ) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise OverlayError(f"tailscaled {STATUS_PATH}: reply is not JSON") from None
        return TailscaleStatus.parse(data)

    async def local_address(self) -> str:
        status = await self.status()
        if status.backend != "Running":
            raise OverlayError(
                f"tailscaled is {status.backend or 'not running'}, not Running: `tailscale up`"
            )
        if status.self_node is None or not status.self_node.addresses:
            raise OverlayError("tailscaled reports no Tailscale address for this node")
        ip = status.self_node.addresses[0]
        self._known.add(ip)
        return str(ip)

    async def local_node(self) -> TailscaleNode:
        status = await self.status()
        if status.self_node is None:
            raise OverlayError("tailscaled reports no Self node")
        return status.self_node

    async def resolve(self, peer: Peer) -> str:
        wanted = peer.tailscale_node
        if not wanted:
            raise missing_binding(peer, "tailscale_node", "--tailscale-node nodekey:HEX")
        status = await self.status()
        field = "key" if wanted.startswith("nodekey:") else "stable_id"
        matches = [n for n in status.peers if getattr(n, field) == wanted]
        if not matches:
            raise OverlayError(f"peer {peer.name!r}: tailscaled knows no peer with node {field} {wanted}")
        if len(matches) > 1:
            raise OverlayError(f"peer {peer.name!r}: tailscaled lists {len(matches)} peers as {wanted}")
        node = matches[0]
        if not node.addresses:
            raise OverlayError(f"peer {peer.name!r}: tailscaled reports no Tailscale address for {wanted}")
        own = status.self_node.addresses[0] if status.self_node and status.self_node.addresses else None
        same = [ip for ip in node.addresses if own is None or ip.version == own.version]
        if not same:
            raise OverlayError(f"peer {peer.name!r} has no Tailscale address of this node's address family")
        self._known.add(same[0])
        return str(same[0])

    def is_overlay(self, address: str) -> bool:
        ip = parse_address(address)
        return ip is not None and in_tailscale_range(ip) and ip in self._known


__all__ = ["TailscaleProvider", "TailscaleStatus", "in_tailscale_range"]
