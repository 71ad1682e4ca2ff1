"""The harness itself: the lab's overlays are real and up, the providers read them for
real, and the capture rules catch every kind of leak the call tests look for (so a
passing call test means something)."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import pytest

from node.overlay.yggdrasil import YggdrasilProvider, addr_for_key

from .netlab import LAN, STATIC, STATIC_CIDR, YGG_PORT, Capture
from .pcap import PrivacyRules

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[2]


async def test_yggdrasil_provider_reads_the_real_daemons(lab):
    for _side, node in lab.ygg.items():
        provider = YggdrasilProvider(node.admin)
        address = await provider.local_address()
        assert address == node.address
        assert ipaddress.ip_address(address) in ipaddress.ip_network("200::/7")
        assert await provider.local_key() == node.key
        assert str(addr_for_key(bytes.fromhex(node.key))) == address


def test_static_provider_reads_the_overlay_interface_inside_the_namespace(lab):
    code = (
        "import asyncio, json; from node.overlay.static import StaticProvider;"
        f"p = StaticProvider(interface='ovl0', cidr={STATIC_CIDR!r});"
        "print(json.dumps(asyncio.run(p.local_address())))"
    )
    for side in "ab":
        out = lab.ns[side].run(sys.executable, "-c", code, timeout=30)
        assert json.loads(out.stdout) == STATIC[side]


SENDER = """
import socket, sys
def udp(dst, port, src=None, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        if src:
            s.bind((src, 0))
        try:
            s.sendto(b"leak", (dst, port))
        except OSError as e:
            print("send failed", dst, port, e, file=sys.stderr)
a_ygg, b_ygg = sys.argv[1], sys.argv[2]
udp("169.254.77.2", 53)                                   # DNS to the LAN
udp("224.0.0.251", 5353)                                  # mDNS
udp("fd00:77::2", 3478, family=socket.AF_INET6)           # STUN over the LAN
udp("10.99.0.2", 19302)                                   # STUN (Google's port)
udp(b_ygg, 40000, src="fd00:77::1", family=socket.AF_INET6)  # LAN source into the overlay
udp("169.254.77.2", 40001)                                # plain UDP on the LAN
udp(b_ygg, 40002, src=a_ygg, family=socket.AF_INET6)      # allowed: overlay to overlay
with socket.socket() as s:                                # TCP on the LAN, not peering
    s.settimeout(1)
    try:
        s.connect(("169.254.77.2", 8080))
    except OSError:
        pass
"""


def test_capture_rules_catch_each_kind_of_leak(lab, tmp_path):
    captures = {side: Capture(lab.ns[side], tmp_path / f"{side}.pcap").start() for side in "ab"}
    try:
        lab.ns["a"].run(sys.executable, "-c", SENDER, lab.ygg["a"].address, lab.ygg["b"].address, timeout=30)
    finally:
        packets = [p for c in captures.values() for p in c.stop()]
    a, b = (ipaddress.ip_address(lab.ygg[s].address) for s in "ab")
    rules = PrivacyRules(
        overlay=frozenset({a, b}), lan_interfaces=frozenset({"lan0"}), lan_tcp_ports=frozenset({YGG_PORT})
    )
    found = "\n".join(rules.violations(packets))
    for expected in (
        "DNS packet",
        "mDNS packet",
        "mDNS multicast",
        "STUN/TURN packet",
        "STUN (Google) packet",
        f"UDP off the overlay: {lab.ns['a'].name}/ygg0 out: UDP {LAN['a'][1]}:",
        f"UDP off the overlay: {lab.ns['a'].name}/lan0 out: UDP {LAN['a'][0]}:",
        "TCP on the LAN other than overlay peering",
    ):
        assert expected in found, f"{expected!r} not flagged in:\n{found}"
    # The overlay-to-overlay datagram is no violation, and it is seen on both ends.
    assert "40002" not in found
    assert PrivacyRules.overlay_udp(packets, "ygg0", a, b)
    assert any(p.netns == lab.ns["b"].name and p.dport == 40002 for p in packets)
