"""The allowlist: the peers this node trusts, what each may do, and how to reach it on
the overlay. Stored as peers.toml in the home so a person can read and edit it."""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from .errors import NodeError
from .identity import InvalidNodeId, normalize_node_id
from .permissions import check_allowlist

PERMISSIONS = ("view", "talk", "call", "trigger")
PERMISSION_HELP = {
    "view": "may ask to watch this node's camera and microphone",
    "talk": "while viewing, may send one audio track to this node's speaker",
    "call": "may call this node, and this node may call it",
    "trigger": "may trigger this node's outgoing calls (MQTT cmd/call)",
}
# The allowlist fields that bind a peer to its overlay address, one per provider family.
BINDINGS = ("address", "yggdrasil_key", "staex_id", "wireguard_key", "nebula_cert", "tailscale_node")
_NEBULA_CERT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
_TAILSCALE_NODE = re.compile(r"^(nodekey:[0-9a-f]{64}|[A-Za-z0-9]{4,64})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HEADER = (
    "# media-node allowlist: one [peers.NAME] table per trusted peer.\n"
    "# node_id: the peer's node id; allow: any of view, talk, call, trigger;\n"
    "# address / yggdrasil_key / staex_id / wireguard_key / nebula_cert / tailscale_node:\n"
    "# how the overlay provider finds the peer (docs/overlays.md);\n"
    "# via: how this node reaches the peer (file:DIR or mqtt) for view and web.\n\n"
)


@dataclass(frozen=True)
class Peer:
    name: str
    node_id: str
    allow: frozenset[str] = field(default_factory=lambda: frozenset({"view"}))
    address: str = ""  # static provider: the peer's overlay address
    yggdrasil_key: str = ""  # yggdrasil provider: the peer's Yggdrasil public key (hex)
    staex_id: str = ""  # staex provider: the peer's Staex node id (default: node_id)
    wireguard_key: str = ""  # wireguard provider: the peer's WireGuard public key (base64)
    nebula_cert: str = ""  # nebula provider: the peer's certificate name or fingerprint
    tailscale_node: str = ""  # tailscale provider: the peer's node key (nodekey:HEX) or stable id
    via: str = ""  # how `view`/`web` reach the peer: file:DIR or mqtt ("" = the default)

    def may(self, permission: str) -> bool:
        return permission in self.allow

    def to_toml(self) -> dict[str, object]:
        data: dict[str, object] = {"node_id": self.node_id, "allow": sorted(self.allow)}
        for key in (*BINDINGS, "via"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


def parse_allow(text: str | list[str] | None) -> frozenset[str]:
    if text is None:
        return frozenset({"view"})
    items = text if isinstance(text, list) else [p for p in text.replace(" ", "").split(",") if p]
    unknown = [p for p in items if p not in PERMISSIONS]
    if unknown:
        raise NodeError(f"unknown permission(s) {unknown}; choose from {', '.join(PERMISSIONS)}")
    return frozenset(items)


def _check_wireguard_key(name: str, key: str) -> str:
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise NodeError(f"peer {name}: wireguard_key must be a WireGuard public key (44 base64 characters)")
    return base64.b64encode(raw).decode()


def _check_nebula_cert(name: str, cert: str) -> str:
    if not _NEBULA_CERT.match(cert):
        raise NodeError(
            f"peer {name}: nebula_cert must be the peer's certificate name or its fingerprint "
            "(64 hex characters, `nebula-cert print -path host.crt`)"
        )
    return cert.lower() if re.fullmatch(r"[0-9A-Fa-f]{64}", cert) else cert


def _check_tailscale_node(name: str, node: str) -> str:
    node = node.strip()
    if node.lower().startswith("nodekey:"):
        node = node.lower()
    if not _TAILSCALE_NODE.match(node):
        raise NodeError(
            f"peer {name}: tailscale_node must be the peer's node key (nodekey:64 hex) or its "
            "stable node id (`tailscale status --json`: Peer[...].PublicKey or .ID)"
        )
    return node


def make_peer(
    name: str,
    node_id: str,
    allow: str | list[str] | None = None,
    address: str = "",
    yggdrasil_key: str = "",
    staex_id: str = "",
    wireguard_key: str = "",
    nebula_cert: str = "",
    tailscale_node: str = "",
    via: str = "",
) -> Peer:
    if not _NAME.match(name):
        raise NodeError(f"peer name {name!r}: use letters, digits, '.', '_' or '-' (max 63)")
    try:
        node_id = normalize_node_id(node_id)
    except InvalidNodeId as e:
        raise NodeError(f"peer {name}: {e}") from None
    if yggdrasil_key:
        try:
            if len(bytes.fromhex(yggdrasil_key)) != 32:
                raise ValueError
        except ValueError:
            raise NodeError(f"peer {name}: yggdrasil_key must be 64 hex characters") from None
        yggdrasil_key = yggdrasil_key.lower()
    if address:
        import ipaddress

        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise NodeError(f"peer {name}: address {address!r} is not an IP address") from None
    if wireguard_key:
        wireguard_key = _check_wireguard_key(name, wireguard_key)
    if nebula_cert:
        nebula_cert = _check_nebula_cert(name, nebula_cert)
    if tailscale_node:
        tailscale_node = _check_tailscale_node(name, tailscale_node)
    if via and not (via == "mqtt" or (via.startswith("file:") and len(via) > 5)):
        raise NodeError(f"peer {name}: via {via!r}: use file:DIR or mqtt")
    return Peer(
        name,
        node_id,
        parse_allow(allow),
        address,
        yggdrasil_key,
        staex_id,
        wireguard_key,
        nebula_cert,
        tailscale_node,
        via,
    )


class PeerStore:
    """peers.toml, read fresh on every lookup so a hand edit takes effect without a restart."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict[str, Peer]:
        # Every read, so a running node stops trusting an allowlist someone made writable.
        check_allowlist(self.path)
        if not self.path.exists():
            return {}
        try:
            data = tomllib.loads(self.path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise NodeError(f"{self.path}: not valid TOML: {e}") from None
        peers = {}
        for name, entry in (data.get("peers") or {}).items():
            if not isinstance(entry, dict) or "node_id" not in entry:
                raise NodeError(f"{self.path}: [peers.{name}] needs a node_id")
            unknown = set(entry) - {"node_id", "allow", "via", *BINDINGS}
            if unknown:
                raise NodeError(f"{self.path}: [peers.{name}] has unknown keys {sorted(unknown)}")
            bindings = {key: entry.get(key, "") for key in BINDINGS}
            try:
                peers[name] = make_peer(
                    name, entry["node_id"], entry.get("allow", ["view"]), via=entry.get("via", ""), **bindings
                )
            except NodeError as e:  # say which file: the message names only the peer
                raise NodeError(f"{self.path}: {e}") from None
        return peers

    def save(self, peers: dict[str, Peer]) -> None:
        body = tomli_w.dumps({"peers": {n: p.to_toml() for n, p in sorted(peers.items())}})
        tmp = self.path.with_suffix(".tmp")
        try:  # keep who may read it; never let group/others write it (load would refuse)
            mode = stat.S_IMODE(self.path.stat().st_mode) & ~0o022
        except FileNotFoundError:
            mode = 0o644
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), mode)
            f.write(_HEADER + body)
        os.replace(tmp, self.path)

    def add(self, peer: Peer, replace: bool = False) -> None:
        peers = self.load()
        clash = [p.name for p in peers.values() if p.node_id == peer.node_id and p.name != peer.name]
        if clash:
            raise NodeError(f"node id already allowlisted as {clash[0]!r}")
        if peer.name in peers and not replace:
            raise NodeError(f"peer {peer.name!r} exists; use --replace to overwrite it")
        peers[peer.name] = peer
        self.save(peers)

    def remove(self, name_or_id: str) -> Peer:
        peers = self.load()
        peer = self.find(name_or_id, peers)
        if peer is None:
            raise NodeError(f"no peer named or with id {name_or_id!r}")
        del peers[peer.name]
        self.save(peers)
        return peer

    def find(self, name_or_id: str, peers: dict[str, Peer] | None = None) -> Peer | None:
        peers = self.load() if peers is None else peers
        if name_or_id in peers:
            return peers[name_or_id]
        return self.by_id(name_or_id, peers)

    def by_id(self, node_id: str, peers: dict[str, Peer] | None = None) -> Peer | None:
        peers = self.load() if peers is None else peers
        try:
            node_id = normalize_node_id(node_id)
        except InvalidNodeId:
            return None
        return next((p for p in peers.values() if p.node_id == node_id), None)
