"""Just enough pcap reading to judge privacy: tcpdump writes `-i any -y LINUX_SLL2`
captures (one per namespace, with the interface index of every packet), and the rules
below say which packets a node is allowed to cause."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from pathlib import Path

LINKTYPE_LINUX_SLL2 = 276
ETH_IPV4, ETH_IPV6, ETH_ARP = 0x0800, 0x86DD, 0x0806
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
_IPV6_EXTENSIONS = {0, 43, 60, 51}  # hop-by-hop, routing, destination options, AH
_FRAGMENT = 44

# DNS, mDNS, LLMNR, SSDP, STUN/TURN (3478/3479/5349) and Google's STUN port.
FORBIDDEN_PORTS = {
    53: "DNS",
    5353: "mDNS",
    5355: "LLMNR",
    1900: "SSDP",
    3478: "STUN/TURN",
    3479: "STUN/TURN",
    5349: "TURN-TLS",
    19302: "STUN (Google)",
}
FORBIDDEN_DESTINATIONS = {
    ipaddress.ip_address("224.0.0.251"): "mDNS",
    ipaddress.ip_address("ff02::fb"): "mDNS",
    ipaddress.ip_address("224.0.0.252"): "LLMNR",
    ipaddress.ip_address("ff02::1:3"): "LLMNR",
}


@dataclass(frozen=True)
class Packet:
    netns: str
    interface: str
    outgoing: bool
    proto: int  # IP protocol number, or -1 for non-IP (ARP ...)
    src: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    sport: int = 0
    dport: int = 0

    @property
    def kind(self) -> str:
        return {TCP: "TCP", UDP: "UDP", ICMP: "ICMP", ICMPV6: "ICMPv6", -1: "non-IP"}.get(
            self.proto, f"ip-proto-{self.proto}"
        )

    def __str__(self) -> str:
        where = f"{self.netns}/{self.interface} {'out' if self.outgoing else 'in'}"
        if self.src is None:
            return f"{where}: {self.kind}"
        return f"{where}: {self.kind} {self.src}:{self.sport} -> {self.dst}:{self.dport}"


def _ports(proto: int, data: bytes) -> tuple[int, int]:
    if proto in (TCP, UDP) and len(data) >= 4:
        return struct.unpack("!HH", data[:4])
    return 0, 0


def _parse_ip(ethertype: int, data: bytes):
    if ethertype == ETH_IPV4 and len(data) >= 20:
        ihl = (data[0] & 0x0F) * 4
        proto = data[9]
        src, dst = ipaddress.IPv4Address(data[12:16]), ipaddress.IPv4Address(data[16:20])
        return proto, src, dst, _ports(proto, data[ihl:])
    if ethertype == ETH_IPV6 and len(data) >= 40:
        proto = data[6]
        src, dst = ipaddress.IPv6Address(data[8:24]), ipaddress.IPv6Address(data[24:40])
        offset = 40
        while proto in _IPV6_EXTENSIONS | {_FRAGMENT} and len(data) >= offset + 8:
            nxt = data[offset]
            length = (
                8
                if proto == _FRAGMENT
                else (data[offset + 1] + 2) * 4
                if proto == 51
                else (data[offset + 1] + 1) * 8
            )
            proto, offset = nxt, offset + length
        return proto, src, dst, _ports(proto, data[offset:])
    return -1, None, None, (0, 0)


def read_sll2(path: Path, netns: str, interfaces: dict[int, str]) -> list[Packet]:
    """Packets of a `tcpdump -i any -y LINUX_SLL2 -w path` capture."""
    raw = path.read_bytes()
    if len(raw) < 24:
        raise ValueError(f"{path}: not a pcap file (is tcpdump writing it?)")
    magic = raw[:4]
    endian = {
        b"\xd4\xc3\xb2\xa1": "<",
        b"\xa1\xb2\xc3\xd4": ">",
        b"\x4d\x3c\xb2\xa1": "<",
        b"\xa1\xb2\x3c\x4d": ">",
    }.get(magic)
    if endian is None:
        raise ValueError(f"{path}: unknown pcap magic {magic.hex()}")
    linktype = struct.unpack(endian + "I", raw[20:24])[0]
    if linktype != LINKTYPE_LINUX_SLL2:
        raise ValueError(f"{path}: link type {linktype}, expected LINUX_SLL2 (276)")
    packets, offset = [], 24
    while offset + 16 <= len(raw):
        _, _, caplen, _ = struct.unpack(endian + "IIII", raw[offset : offset + 16])
        frame = raw[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        if len(frame) < 20:
            continue
        ethertype, _, ifindex = struct.unpack("!HHI", frame[:8])
        pkttype = frame[10]
        proto, src, dst, (sport, dport) = _parse_ip(ethertype, frame[20:])
        packets.append(
            Packet(
                netns, interfaces.get(ifindex, f"if{ifindex}"), pkttype == 4, proto, src, dst, sport, dport
            )
        )
    return packets


@dataclass(frozen=True)
class PrivacyRules:
    """What a call between two overlay nodes may put on the wire.

    overlay: the two nodes' overlay addresses: the only UDP allowed anywhere is between them.
    lan_interfaces: the underlay; there, only TCP to/from `lan_tcp_ports` (Yggdrasil's
    peering) and UDP between LAN addresses to/from `lan_udp_ports` (WireGuard's and
    Nebula's own packets), each carrying an overlay, plus ARP/ICMP neighbour discovery."""

    overlay: frozenset
    lan_interfaces: frozenset
    lan_tcp_ports: frozenset = frozenset()
    lan_udp_ports: frozenset = frozenset()
    lan_addresses: frozenset = frozenset()

    def overlay_carrier(self, p: Packet) -> bool:
        """A packet of an overlay daemon itself, on the LAN, between LAN addresses."""
        return (
            p.interface in self.lan_interfaces
            and bool({p.sport, p.dport} & self.lan_udp_ports)
            and p.src in self.lan_addresses
            and p.dst in self.lan_addresses
        )

    def violations(self, packets: list[Packet]) -> list[str]:
        found = []
        for p in packets:
            for port in (p.sport, p.dport):
                if p.proto in (TCP, UDP) and port in FORBIDDEN_PORTS:
                    found.append(f"{FORBIDDEN_PORTS[port]} packet: {p}")
            if p.dst in FORBIDDEN_DESTINATIONS:
                found.append(f"{FORBIDDEN_DESTINATIONS[p.dst]} multicast: {p}")
            off_overlay = not (p.src in self.overlay and p.dst in self.overlay)
            if p.proto == UDP and off_overlay and not self.overlay_carrier(p):
                found.append(f"UDP off the overlay: {p}")
            if (
                p.interface in self.lan_interfaces
                and p.proto == TCP
                and not ({p.sport, p.dport} & self.lan_tcp_ports)
            ):
                found.append(f"TCP on the LAN other than overlay peering: {p}")
            if p.interface in self.lan_interfaces and p.proto not in (TCP, ICMP, ICMPV6, -1, UDP):
                found.append(f"{p.kind} on the LAN: {p}")
        return found

    @staticmethod
    def overlay_udp(packets: list[Packet], interface: str, a, b) -> list[Packet]:
        """UDP between the two overlay addresses on `interface` (the call's media)."""
        return [
            p for p in packets if p.proto == UDP and p.interface == interface and {p.src, p.dst} == {a, b}
        ]


def tally(packets: list[Packet]) -> dict[str, int]:
    """Packets per namespace suffix, interface and kind (for reports and failure messages)."""
    counts: dict[str, int] = {}
    for p in packets:
        key = f"{p.netns[-1]}/{p.interface}/{p.kind}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
