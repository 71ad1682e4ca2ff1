"""The WireGuard peer table: which public key owns which allowed IPs on one interface.

Reading it from WireGuard needs privilege (netlink wants CAP_NET_ADMIN; wireguard-go's
control socket is root's, mode 0600, and answers with the private key too), and the
node runs unprivileged. So root exports the table to a file (`media-node wireguard
export`, run by the unit's `ExecStartPre=+` and a timer) and the service only reads it.
The export asks `wg` for public keys and allowed IPs only, so no private key ever
reaches this process; the parser also reads `wg show IFACE dump` output, and then drops
the interface line (it holds the private key) without keeping any of it."""

from __future__ import annotations

import base64
import binascii
import grp
import ipaddress
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import OverlayError
from .local import read_bounded

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_TABLE = 1 << 20
HEADER = "# interface"  # "# interface wg0 public-key KEY"


def wireguard_key(text: str) -> str | None:
    """A canonical base64 WireGuard key, or None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return base64.b64encode(raw).decode() if len(raw) == 32 else None


def is_single_host(net: IPNetwork) -> bool:
    return net.prefixlen == net.max_prefixlen


@dataclass(frozen=True)
class PeerTable:
    interface: str = ""
    public_key: str = ""  # this node's public key, when the table names it
    peers: dict[str, tuple[IPNetwork, ...]] = field(default_factory=dict)

    def owners(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
        """Every key that lists `ip` as a single-host allowed IP."""
        return [key for key, nets in self.peers.items() if any(is_single_host(n) and ip in n for n in nets)]

    def covers(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in n for nets in self.peers.values() for n in nets)


def _networks(text: str, where: str) -> tuple[IPNetwork, ...]:
    if text in ("", "(none)"):
        return ()
    nets = []
    for item in text.replace(",", " ").split():
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise OverlayError(f"{where}: {item!r} is not an allowed-ips network") from None
    return tuple(nets)


def parse_table(text: str, where: str = "peer table") -> PeerTable:
    """`wg show IFACE allowed-ips` (with the export's header) or `wg show IFACE dump`."""
    interface, own = "", ""
    peers: dict[str, tuple[IPNetwork, ...]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(HEADER):
            words = line.split()
            if len(words) >= 3:
                interface = words[2]
            if len(words) >= 5 and words[3] == "public-key":
                own = wireguard_key(words[4]) or ""
            continue
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if number == 1 and len(fields) == 4:
            # dump's interface line: private key, public key, port, fwmark. Only the
            # public key is kept; the private key is neither stored nor quoted in errors.
            own = wireguard_key(fields[1]) or ""
            continue
        if len(fields) == 8:
            key_text, allowed = fields[0], fields[3]  # dump's peer line
        elif len(fields) == 2:
            key_text, allowed = fields
        else:
            raise OverlayError(f"{where}, line {number}: not a WireGuard peer line")
        key = wireguard_key(key_text)
        if key is None:
            raise OverlayError(f"{where}, line {number}: not a WireGuard public key")
        peers[key] = _networks(allowed.strip(), f"{where}, line {number}")
    return PeerTable(interface, own, peers)


def read_table(path: Path) -> PeerTable:
    text = read_bounded(
        path,
        MAX_TABLE,
        "the WireGuard peer table",
        denied="export it with --group set to the service user's group",
        missing=f"no WireGuard peer table at {path}: root exports it with "
        f"`media-node wireguard export IFACE --to {path}` (the unit's ExecStartPre does)",
    )
    return parse_table(text, str(path))


def _wg(wg: str, *args: str) -> str:
    try:
        result = subprocess.run([wg, *args], check=False, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OverlayError(f"cannot run `{wg} {' '.join(args)}`: {e}") from None
    if result.returncode != 0:
        raise OverlayError(f"`{wg} {' '.join(args)}` failed: {result.stderr.strip()[:200]}")
    return result.stdout


def export_table(interface: str, to: Path, group: str = "", wg: str = "wg") -> PeerTable:
    """Write the interface's public keys and allowed IPs to `to` (mode 0640, group
    `group`), atomically. Asks `wg` for exactly those two things, never for `dump`."""
    own = _wg(wg, "show", interface, "public-key").strip()
    allowed = _wg(wg, "show", interface, "allowed-ips")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = (
        f"# media-node WireGuard peer table: public keys and allowed IPs only, no private key.\n"
        f"# Written by `media-node wireguard export` at {stamp}; read by the media-node service.\n"
        f"{HEADER} {interface} public-key {own}\n{allowed}"
    )
    table = parse_table(text, f"`wg show {interface} allowed-ips`")
    gid = grp.getgrnam(group).gr_gid if group else -1
    to.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=to.parent, prefix=f".{to.name}.")
    try:
        os.fchmod(fd, 0o640)
        if gid >= 0:
            os.fchown(fd, -1, gid)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, to)
    except OSError:
        os.unlink(tmp)
        raise
    return table
