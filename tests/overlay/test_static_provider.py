"""The static provider: own address from config or an interface (read for real through
ifaddr), peers' addresses from the allowlist, overlay membership by CIDR or exact match."""

from __future__ import annotations

import pytest

from node.config import OverlaySection
from node.overlay import OverlayError, make_provider
from node.overlay.static import StaticProvider, interface_addresses
from node.peers import Peer

NODE_ID = "0" * 52


def peer(address: str = "", name: str = "cam") -> Peer:
    return Peer(name=name, node_id=NODE_ID, address=address)


async def test_configured_loopback_address_is_the_embedded_demo_overlay():
    provider = StaticProvider(address="127.0.0.1")
    assert provider.name == "static"
    assert await provider.local_address() == "127.0.0.1"
    assert await provider.resolve(peer("127.0.0.2")) == "127.0.0.2"
    assert provider.is_overlay("127.0.0.1") and provider.is_overlay("127.0.0.2")
    assert not provider.is_overlay("127.0.0.3")  # never resolved, no cidr: not provably overlay


async def test_address_must_be_on_this_machine():
    # TEST-NET-3 (documentation range): on no interface of a test machine. Checked by
    # binding a socket, so nothing is sent.
    provider = StaticProvider(address="203.0.113.77")
    with pytest.raises(OverlayError, match="not on this machine"):
        await provider.local_address()


async def test_address_from_an_interface():
    assert interface_addresses("lo") is not None
    provider = StaticProvider(interface="lo", cidr="127.0.0.0/8")
    assert await provider.local_address() == "127.0.0.1"
    provider6 = StaticProvider(interface="lo", cidr="::1/128")
    assert await provider6.local_address() == "::1"


async def test_missing_interface_means_the_overlay_is_down():
    provider = StaticProvider(interface="nebula-none0")
    with pytest.raises(OverlayError, match="does not exist"):
        await provider.local_address()


async def test_interface_without_an_address_in_the_cidr():
    provider = StaticProvider(interface="lo", cidr="100.64.0.0/10")
    with pytest.raises(OverlayError, match="no address inside 100.64.0.0/10"):
        await provider.local_address()


def test_configuration_errors_are_overlay_errors():
    with pytest.raises(OverlayError, match="address or"):
        StaticProvider()
    with pytest.raises(OverlayError, match="outside"):
        StaticProvider(address="127.0.0.1", cidr="100.64.0.0/10")
    with pytest.raises(OverlayError, match="not a network"):
        StaticProvider(address="127.0.0.1", cidr="nonsense")
    for bad in ("0.0.0.0", "::", "224.0.0.251", "ff02::fb", "fe80::1", "host.local", "10.0.0.1%eth0"):
        with pytest.raises(OverlayError):
            StaticProvider(address=bad)


async def test_peer_addresses_come_from_the_allowlist_and_must_lie_in_the_cidr():
    provider = StaticProvider(address="127.0.0.1", cidr="127.0.0.0/8")
    assert await provider.resolve(peer("127.0.0.9")) == "127.0.0.9"
    with pytest.raises(OverlayError, match="no overlay address"):
        await provider.resolve(peer(""))
    with pytest.raises(OverlayError, match="outside the overlay"):
        await provider.resolve(peer("10.1.2.3"))


async def test_loopback_peer_needs_loopback_named_outright():
    provider = StaticProvider(interface="nebula1")  # a real overlay: loopback is not on it
    with pytest.raises(OverlayError, match="loopback"):
        await provider.resolve(peer("127.0.0.1"))
    with pytest.raises(OverlayError, match="loopback"):
        await provider.resolve(peer("::1"))
    assert await StaticProvider(interface="lo").resolve(peer("::1")) == "::1"


def test_is_overlay_with_a_cidr_compares_parsed_addresses():
    provider = StaticProvider(interface="nebula1", cidr="100.64.0.0/10")
    assert provider.is_overlay("100.64.0.1")
    assert provider.is_overlay("100.127.255.254")
    assert not provider.is_overlay("100.128.0.1")
    assert not provider.is_overlay("192.168.1.10")
    assert not provider.is_overlay("100.64.0.1.local")
    assert not provider.is_overlay("uuid-1234.local")
    assert not provider.is_overlay("fd00::1")


async def test_is_overlay_without_a_cidr_is_exact_match_not_substring():
    provider = StaticProvider(interface="nebula1")
    await provider.resolve(peer("10.83.0.1"))
    assert provider.is_overlay("10.83.0.1")
    for other in ("10.83.0.10", "10.83.0.100", "110.83.0.1", "10.83.0.1.local"):
        assert not provider.is_overlay(other), other


async def test_ipv6_addresses_compare_as_values():
    provider = StaticProvider(interface="lo", cidr="fd99::/64")
    assert await provider.resolve(peer("fd99:0:0:0::0001")) == "fd99::1"
    assert provider.is_overlay("FD99::1")


async def test_make_provider_builds_the_configured_static_provider():
    provider = make_provider(OverlaySection(provider="static", address="127.0.0.1"))
    assert isinstance(provider, StaticProvider)
    assert await provider.local_address() == "127.0.0.1"
    with pytest.raises(OverlayError):
        make_provider(OverlaySection(provider="static"))
