"""The WireGuard provider's rules on peer tables (the real interface is exercised by the
privacy harness: wireguard-go in namespaces). Tables here are what `wg show IFACE
allowed-ips` and `wg show IFACE dump` print."""

from __future__ import annotations

import base64
import ipaddress
import os

import pytest

from node.overlay import OverlayError
from node.overlay.wgtable import parse_table, read_table
from node.overlay.wireguard import WireGuardProvider
from node.peers import make_peer

NODE_ID = "a" * 51 + "0"
PRIVATE = base64.b64encode(b"\x11" * 32).decode()
OWN = base64.b64encode(b"\x22" * 32).decode()
CAM, HUB, TWIN, DUAL = (base64.b64encode(bytes([n]) * 32).decode() for n in (0x33, 0x44, 0x55, 0x66))


def cam(key: str = CAM):
    return make_peer("cam", NODE_ID, "view", wireguard_key=key)


def table_text(*lines: str) -> str:
    return f"# interface wg0 public-key {OWN}\n" + "".join(f"{ln}\n" for ln in lines)


@pytest.fixture
def provider(tmp_path, monkeypatch):
    def make(text: str) -> WireGuardProvider:
        path = tmp_path / "wg0.peers"
        path.write_text(text)
        p = WireGuardProvider("wg0", str(path))
        # The interface itself is the harness's business; here the table's rules.
        monkeypatch.setattr(p, "own_address", lambda: ipaddress.ip_address("10.98.0.1"))
        return p

    return make


async def test_the_keys_single_host_allowed_ip_is_the_address(provider):
    p = provider(table_text(f"{CAM}\t10.98.0.2/32", f"{HUB}\t10.98.1.0/24"))
    assert await p.resolve(cam()) == "10.98.0.2"
    assert p.is_overlay("10.98.0.2") and p.is_overlay("10.98.1.9") and not p.is_overlay("10.99.0.2")
    assert await p.local_key() == OWN


async def test_a_key_routing_only_a_subnet_is_refused(provider):
    p = provider(table_text(f"{HUB}\t10.98.1.0/24"))
    with pytest.raises(OverlayError, match="no single-host allowed IP"):
        await p.resolve(cam(HUB))


async def test_an_address_two_keys_list_is_refused(provider):
    p = provider(table_text(f"{CAM}\t10.98.0.2/32", f"{TWIN}\t10.98.0.2/32"))
    with pytest.raises(OverlayError, match="another WireGuard key too"):
        await p.resolve(cam())


async def test_a_broader_route_of_another_key_does_not_share_the_address(provider):
    # WireGuard picks the longest prefix: 10.98.0.2 is CAM's even though HUB routes the /16.
    p = provider(table_text(f"{CAM}\t10.98.0.2/32", f"{HUB}\t10.98.0.0/16"))
    assert await p.resolve(cam()) == "10.98.0.2"


async def test_dual_stack_takes_this_nodes_family_and_refuses_two_of_it(provider):
    p = provider(table_text(f"{DUAL}\tfd00:98::2/128 10.98.0.2/32"))
    assert await p.resolve(cam(DUAL)) == "10.98.0.2"
    p = provider(table_text(f"{DUAL}\t10.98.0.2/32 10.98.0.3/32"))
    with pytest.raises(OverlayError, match="keep exactly one"):
        await p.resolve(cam(DUAL))


async def test_unknown_key_and_missing_binding_are_refused(provider):
    p = provider(table_text(f"{CAM}\t10.98.0.2/32"))
    with pytest.raises(OverlayError, match="is not a peer of wg0"):
        await p.resolve(cam(TWIN))
    with pytest.raises(OverlayError, match="no wireguard_key"):
        await p.resolve(make_peer("cam", NODE_ID, "view", address="10.98.0.2"))


def test_dump_output_is_read_and_its_private_key_dropped():
    dump = (
        f"{PRIVATE}\t{OWN}\t51820\toff\n"
        f"{CAM}\t(none)\t169.254.77.2:51820\t10.98.0.2/32,fd00:98::2/128\t0\t0\t0\toff\n"
        f"{HUB}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n"
    )
    table = parse_table(dump)
    assert table.public_key == OWN
    assert [str(n) for n in table.peers[CAM]] == ["10.98.0.2/32", "fd00:98::2/128"]
    assert table.peers[HUB] == ()
    assert PRIVATE not in repr(table)


def test_a_bad_line_is_refused_without_quoting_it():
    with pytest.raises(OverlayError) as refused:
        parse_table(f"{PRIVATE}x\tjunk\n")
    assert PRIVATE not in str(refused.value)


async def test_table_of_another_interface_is_refused(provider):
    p = provider(f"# interface wg1 public-key {OWN}\n{CAM}\t10.98.0.2/32\n")
    with pytest.raises(OverlayError, match="peer table of wg1, not of wg0"):
        await p.resolve(cam())


def test_missing_or_unreadable_table_says_how_to_export_it(tmp_path):
    with pytest.raises(OverlayError, match="media-node wireguard export"):
        read_table(tmp_path / "none.peers")
    path = tmp_path / "closed.peers"
    path.write_text(table_text())
    path.chmod(0)
    if os.geteuid() != 0:  # root reads anything; the service-user path is in the privacy harness
        with pytest.raises(OverlayError, match="permission denied"):
            read_table(path)


async def test_missing_interface_is_an_overlay_error(tmp_path):
    p = WireGuardProvider("mnwg-none", str(tmp_path / "t"))
    with pytest.raises(OverlayError, match="does not exist"):
        await p.local_address()
