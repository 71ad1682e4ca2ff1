"""The Yggdrasil provider. A Yggdrasil address is a pure function of the node's Ed25519
public key (AddrForKey in yggdrasil-go src/address/address.go), so a peer's address is
derived from the key in the allowlist, with no lookup. Own key and address come from the
daemon's admin socket (getSelf), which also tells whether the overlay is up."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..peers import Peer
from . import OverlayError, OverlayProvider, parse_address
from .local import missing_binding

YGGDRASIL_NETWORK = ipaddress.IPv6Network("200::/7")
ADMIN_TIMEOUT = 3.0
MAX_ADMIN_REPLY = 1 << 20


def addr_for_key(public_key: bytes) -> ipaddress.IPv6Address:
    """AddrForKey: invert the key, count its leading 1 bits, drop them and the 0 bit
    after them; the address is 0x02, the count, then the following bits (16 bytes)."""
    if len(public_key) != 32:
        raise ValueError("a Yggdrasil public key is 32 bytes")
    key = int.from_bytes(public_key, "big")
    inverted = key ^ ((1 << 256) - 1)
    # Leading 1 bits of the inverted key = leading 0 bits of the key.
    ones = min(256 - key.bit_length(), 255)  # one byte holds the count; only an all-zero key hits it
    rest_bits = max(256 - ones - 1, 0)
    rest = inverted & ((1 << rest_bits) - 1)
    whole = rest_bits // 8  # Go keeps whole bytes only, most significant first
    rest >>= rest_bits - whole * 8
    tail = rest.to_bytes(whole, "big")[:14]
    return ipaddress.IPv6Address((bytes([0x02, ones]) + tail).ljust(16, b"\0"))


def subnet_for_key(public_key: bytes) -> ipaddress.IPv6Network:
    """SubnetForKey: the address's first 8 bytes with the low bit of the first set (300::/8)."""
    head = bytearray(addr_for_key(public_key).packed[:8])
    head[0] |= 0x01
    return ipaddress.IPv6Network((bytes(head) + bytes(8), 64))


def parse_key(hex_key: str) -> bytes:
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise OverlayError(f"{hex_key!r} is not a Yggdrasil public key (64 hex characters)")
    return key


@dataclass(frozen=True)
class AdminEndpoint:
    """unix:///path, or tcp:// on a loopback address: the admin API controls the daemon
    (addPeer ...), so it is never reached over a network, and never by a name (no DNS)."""

    scheme: str
    path: str = ""
    host: str = ""
    port: int = 0

    @classmethod
    def parse(cls, text: str) -> AdminEndpoint:
        parts = urlsplit(text)
        if parts.scheme == "unix":
            path = parts.netloc + parts.path
            if not path.startswith("/"):
                raise OverlayError(
                    f"yggdrasil_admin {text!r}: use an absolute path, unix:///run/yggdrasil/yggdrasil.sock"
                )
            return cls("unix", path=path)
        if parts.scheme == "tcp":
            try:
                host, port = parts.hostname or "", parts.port
            except ValueError:
                host, port = "", None
            ip = parse_address(host)
            if ip is None or not ip.is_loopback or not port:
                raise OverlayError(
                    f"yggdrasil_admin {text!r}: tcp:// must name a loopback address and port, "
                    "e.g. tcp://127.0.0.1:9001 (no host names, no remote admin)"
                )
            return cls("tcp", host=str(ip), port=port)
        raise OverlayError(f"yggdrasil_admin {text!r}: use unix:///path or tcp://127.0.0.1:PORT")

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


async def admin_request(
    endpoint: AdminEndpoint,
    request: str,
    arguments: dict[str, object] | None = None,
    timeout: float = ADMIN_TIMEOUT,
) -> dict[str, Any]:  # JSON: each caller checks the shape it reads
    """One admin request (keepalive off: the daemon closes after replying)."""
    body = json.dumps({"request": request, "arguments": arguments or {}, "keepalive": False}).encode()

    async def exchange() -> bytes:
        if endpoint.scheme == "unix":
            reader, writer = await asyncio.open_unix_connection(endpoint.path)
        else:
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        try:
            writer.write(body)
            await writer.drain()
            data = await reader.read(MAX_ADMIN_REPLY + 1)
            while data and len(data) <= MAX_ADMIN_REPLY:
                try:
                    json.loads(data)
                    break  # a whole reply; do not wait for the close
                except ValueError:
                    more = await reader.read(MAX_ADMIN_REPLY + 1 - len(data))
                    if not more:
                        break
                    data += more
            return data
        finally:
            writer.close()

    try:
        raw = await asyncio.wait_for(exchange(), timeout)
    except TimeoutError:
        raise OverlayError(
            f"Yggdrasil admin {endpoint} did not answer {request} within {timeout:g} s"
        ) from None
    except OSError as e:
        raise OverlayError(
            f"Yggdrasil admin {endpoint} unreachable ({e.strerror or e}): is yggdrasil running?"
        ) from None
    try:
        reply = json.loads(raw)
    except ValueError:
        raise OverlayError(f"Yggdrasil admin {endpoint}: reply to {request} is not JSON") from None
    if (
        not isinstance(reply, dict)
        or reply.get("status") != "success"
        or not isinstance(reply.get("response"), dict)
    ):
        error = reply.get("error") if isinstance(reply, dict) else None
        raise OverlayError(f"Yggdrasil admin {endpoint}: {request} failed: {error or 'unexpected reply'}")
    response: dict[str, Any] = reply["response"]
    return response


@dataclass(frozen=True)
class YggdrasilSelf:
    key: str  # hex Ed25519 public key
    address: ipaddress.IPv6Address


class YggdrasilProvider(OverlayProvider):
    name = "yggdrasil"

    def __init__(self, admin: str, timeout: float = ADMIN_TIMEOUT):
        self.admin = AdminEndpoint.parse(admin)
        self.timeout = timeout

    async def get_self(self) -> YggdrasilSelf:
        reply = await admin_request(self.admin, "getself", timeout=self.timeout)
        # 0.4 answers {key, address, ...}; some builds nest it as {"self": {ADDRESS: {...}}}.
        info = reply
        if "key" not in info and isinstance(reply.get("self"), dict) and len(reply["self"]) == 1:
            ((addr, info),) = reply["self"].items()
            info = dict(info, address=addr) if isinstance(info, dict) else {}
        key_hex = info.get("key") if isinstance(info, dict) else None
        if not isinstance(key_hex, str):
            raise OverlayError(f"Yggdrasil admin {self.admin}: getSelf carries no key")
        key = parse_key(key_hex)
        derived = addr_for_key(key)
        reported = parse_address(str(info.get("address", "")))
        if reported is not None and reported != derived:
            # The address is what peers derive from our key; a mismatch means a different daemon or build.
            raise OverlayError(f"Yggdrasil reports address {reported}, but its key gives {derived}")
        return YggdrasilSelf(key=key.hex(), address=derived)

    async def local_key(self) -> str:
        """This node's Yggdrasil public key (hex), what peers put in their allowlist."""
        return (await self.get_self()).key

    async def local_address(self) -> str:
        return str((await self.get_self()).address)

    async def resolve(self, peer: Peer) -> str:
        if not peer.yggdrasil_key:
            raise missing_binding(peer, "yggdrasil_key", "--yggdrasil-key HEX")
        return str(addr_for_key(parse_key(peer.yggdrasil_key)))

    def is_overlay(self, address: str) -> bool:
        ip = parse_address(address)
        return isinstance(ip, ipaddress.IPv6Address) and ip in YGGDRASIL_NETWORK
