"""The Yggdrasil provider against the real daemon (Debian's yggdrasil 0.4.7): AddrForKey
checked against `yggdrasil -address`, own key/address through the real admin socket."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from node.overlay import OverlayError
from node.overlay.yggdrasil import AdminEndpoint, YggdrasilProvider, addr_for_key, subnet_for_key
from node.peers import Peer

from .yggdaemon import YggdrasilDaemon, cli_address, cli_subnet, generate_config

pytestmark = pytest.mark.timeout(120)

NODE_ID = "0" * 52
# Taken from a real 0.4.7 daemon's getSelf (key, address, subnet).
VECTOR = (
    "bc369cbdfe89f2ed366c89574d32333b9f0e7591b3e14462439d74898c2b9c9f",
    "200:8792:c684:2ec:1a25:9326:ed51:659b",
    "300:8792:c684:2ec::/64",
)


def peer(key: str = "", name: str = "cam") -> Peer:
    return Peer(name=name, node_id=NODE_ID, yggdrasil_key=key)


def test_addr_for_key_fixed_vector():
    key = bytes.fromhex(VECTOR[0])
    assert str(addr_for_key(key)) == VECTOR[1]
    assert str(subnet_for_key(key)) == VECTOR[2]


def test_addr_for_key_matches_daemon_for_generated_configs(tmp_path):
    for i in range(5):
        conf = tmp_path / f"{i}.conf"
        config = generate_config(conf)
        key = bytes.fromhex(config["PublicKey"])
        assert addr_for_key(key) == ipaddress.IPv6Address(cli_address(conf)), conf
        assert subnet_for_key(key) == ipaddress.IPv6Network(cli_subnet(conf)), conf


def _key_with_leading_zero_bits(bits: int) -> tuple[bytes, bytes]:
    """An Ed25519 key pair whose public key starts with >= `bits` zero bits (so the
    inverted key has a long run of ones: the part of AddrForKey random keys rarely reach)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        private = Ed25519PrivateKey.generate()
        pub = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if int.from_bytes(pub, "big") >> (256 - bits) == 0:
            seed = private.private_bytes_raw()
            return seed, pub
    raise AssertionError("no key found in time")


def test_addr_for_key_matches_daemon_for_keys_with_many_leading_zeros(tmp_path):
    seed, pub = _key_with_leading_zero_bits(11)
    conf = tmp_path / "zeros.conf"
    generate_config(conf, PrivateKey=(seed + pub).hex(), PublicKey=pub.hex())
    got = addr_for_key(pub)
    assert got.packed[1] >= 11  # the count of leading ones of the inverted key
    assert got == ipaddress.IPv6Address(cli_address(conf))
    assert subnet_for_key(pub) == ipaddress.IPv6Network(cli_subnet(conf))


def test_addr_for_key_rejects_wrong_length():
    with pytest.raises(ValueError):
        addr_for_key(b"\x01" * 31)


@pytest.fixture
def start_daemon(tmp_path):
    """Starts real daemons; every one is stopped at the end, whatever happened."""
    started: list[YggdrasilDaemon] = []

    def start(name: str, admin: str | None = None) -> YggdrasilDaemon:
        d = YggdrasilDaemon(tmp_path / name, admin=admin)
        started.append(d)
        return d.start()

    yield start
    for d in started:
        d.stop()


@pytest.fixture
def daemon(start_daemon):
    return start_daemon("ygg")


async def test_own_key_and_address_from_the_admin_socket(daemon):
    provider = YggdrasilProvider(daemon.admin)
    assert provider.name == "yggdrasil"
    address = await provider.local_address()
    assert address == cli_address(daemon.conf)
    assert await provider.local_key() == daemon.key
    assert provider.is_overlay(address)


async def test_admin_over_loopback_tcp(start_daemon):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = start_daemon("tcp", admin=f"tcp://127.0.0.1:{port}")
    assert await YggdrasilProvider(d.admin).local_address() == cli_address(d.conf)


async def test_two_providers_in_one_process_do_not_mix(start_daemon):
    a, b = start_daemon("a"), start_daemon("b")
    pa, pb = YggdrasilProvider(a.admin), YggdrasilProvider(b.admin)
    got_a, got_b = await asyncio.gather(pa.local_address(), pb.local_address())
    assert got_a == cli_address(a.conf) and got_b == cli_address(b.conf) and got_a != got_b
    # Each resolves the other from the key alone, with no lookup.
    assert await pa.resolve(peer(b.key)) == got_b
    assert await pb.resolve(peer(a.key)) == got_a


async def test_daemon_down_is_an_overlay_error(daemon):
    provider = YggdrasilProvider(daemon.admin)
    await provider.local_address()
    daemon.stop()
    with pytest.raises(OverlayError, match="is yggdrasil running"):
        await provider.local_address()


async def test_silent_admin_socket_times_out(tmp_path):
    path = tmp_path / "silent.sock"
    server = await asyncio.start_unix_server(lambda r, w: None, path=str(path))  # accepts, never answers
    try:
        provider = YggdrasilProvider(f"unix://{path}", timeout=0.5)
        with pytest.raises(OverlayError, match="did not answer"):
            await asyncio.wait_for(provider.local_address(), 10)
    finally:
        server.close()


async def _one_reply_server(path, reply: dict):
    async def handle(reader, writer):
        await reader.read(4096)
        writer.write(json.dumps(reply).encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_unix_server(handle, path=str(path))


async def test_admin_reply_whose_address_does_not_match_its_key_is_refused(tmp_path):
    path = tmp_path / "liar.sock"
    server = await _one_reply_server(
        path,
        {
            "status": "success",
            "response": {"key": VECTOR[0], "address": "201:1111:2222:3333:4444:5555:6666:7777"},
        },
    )
    try:
        with pytest.raises(OverlayError, match="its key gives"):
            await YggdrasilProvider(f"unix://{path}").local_address()
    finally:
        server.close()


async def test_admin_error_reply_is_reported(tmp_path):
    path = tmp_path / "err.sock"
    server = await _one_reply_server(path, {"status": "error", "error": "unknown request"})
    try:
        with pytest.raises(OverlayError, match="unknown request"):
            await YggdrasilProvider(f"unix://{path}").local_address()
    finally:
        server.close()


@pytest.mark.parametrize(
    "endpoint",
    [
        "tcp://192.0.2.1:9001",  # not loopback
        "tcp://localhost:9001",  # a name: would need a lookup
        "tcp://127.0.0.1",  # no port
        "http://127.0.0.1:9001",
        "unix://relative/path.sock",
        "",
    ],
)
def test_admin_endpoint_must_be_unix_or_loopback_tcp(endpoint):
    with pytest.raises(OverlayError):
        YggdrasilProvider(endpoint)


def test_admin_endpoint_forms():
    assert str(AdminEndpoint.parse("unix:///var/run/yggdrasil.sock")) == "unix:///var/run/yggdrasil.sock"
    assert str(AdminEndpoint.parse("tcp://[::1]:9001")) == "tcp://[::1]:9001"
    assert str(AdminEndpoint.parse("tcp://127.0.0.1:9001")) == "tcp://127.0.0.1:9001"


async def test_resolve_derives_the_address_from_the_allowlisted_key():
    provider = YggdrasilProvider("unix:///nonexistent/admin.sock")  # resolve needs no daemon
    assert await provider.resolve(peer(VECTOR[0])) == VECTOR[1]
    assert await provider.resolve(peer(VECTOR[0].upper())) == VECTOR[1]
    assert provider.is_overlay(VECTOR[1]) and not provider.is_overlay("10.0.0.1")
    with pytest.raises(OverlayError, match="no yggdrasil_key"):
        await provider.resolve(peer(""))
    with pytest.raises(OverlayError, match="64 hex"):
        await provider.resolve(peer("abcd"))


@pytest.mark.parametrize(
    "address,expected",
    [
        (VECTOR[1], True),
        ("3ff:ffff::1", True),  # 200::/7 covers node addresses (200::/8) and subnets (300::/8)
        ("1ff:ffff::1", False),
        ("400::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("127.0.0.1", False),
        ("10.83.0.1", False),
        ("abc.local", False),
        ("201:2515:516c:32b7:96d4:f61e:16cd:ffd8%ygg0", False),
        ("", False),
    ],
)
def test_is_overlay_means_200_slash_7(address, expected):
    assert YggdrasilProvider("unix:///x.sock").is_overlay(address) is expected


def test_make_provider_builds_the_yggdrasil_provider():
    from node.config import OverlaySection
    from node.overlay import make_provider

    provider = make_provider(OverlaySection(provider="yggdrasil", yggdrasil_admin="unix:///run/ygg.sock"))
    assert isinstance(provider, YggdrasilProvider) and str(provider.admin) == "unix:///run/ygg.sock"
