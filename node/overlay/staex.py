"""The Staex provider. Staex (mcc) routes by node id and hands out node-local,
temporary addresses: the same id may resolve to different addresses on different nodes.
So every node resolves its peer itself (`mcc resolve ID`), and a receiver replaces the
peer's candidate address with its own resolution (done on parsed SDP fields by the ICE
policy, never by substring as Copybara did).

Two ways to ask mcc: run the command (`mcc id`, `mcc resolve ID`; configurable, e.g.
`docker exec mcc mcc`), or a loopback HTTP helper in Copybara's shape (`GET /id`,
`GET /resolve?node-id=ID`, each answering a JSON string)."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import shlex
from urllib.parse import quote, urlsplit

from ..peers import Peer
from . import IPAddress, OverlayError, OverlayProvider, parse_address, usable_unicast
from .local import run_tool

TIMEOUT = 5.0
MAX_OUTPUT = 4096
# Staex ids seen in the wild are 52 lowercase Crockford base32 characters; accept the
# alphabet loosely, but never anything that could read as an option or a path.
_STAEX_ID = re.compile(r"^[0-9a-z]{16,128}$")


def check_staex_id(node_id: str) -> str:
    node_id = node_id.strip().lower()
    if not _STAEX_ID.match(node_id):
        raise OverlayError(f"{node_id!r} is not a Staex node id (lowercase base32)")
    return node_id


def _decode_value(text: str, what: str) -> str:
    """mcc prints a bare value; the HTTP helper sends a JSON string. Accept either."""
    text = text.strip()
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, str):
            raise OverlayError(f"Staex {what}: not a JSON string: {text[:80]!r}")
        text = value.strip()
    if not text or "\n" in text:
        raise OverlayError(f"Staex {what}: expected one value, got {text[:80]!r}")
    return text


def _parse_resolved(text: str, what: str) -> IPAddress:
    ip = parse_address(_decode_value(text, what))
    if ip is None or not usable_unicast(ip):
        raise OverlayError(f"Staex {what}: {text.strip()[:80]!r} is not a unicast IP address")
    return ip


class MccCommand:
    """Runs mcc without a shell (arguments are never interpolated into a command line)."""

    def __init__(self, command: str, timeout: float = TIMEOUT):
        self.argv = shlex.split(command)
        if not self.argv:
            raise OverlayError("[overlay] staex_command is empty (e.g. 'mcc' or 'docker exec mcc mcc')")
        self.timeout = timeout

    async def run(self, *args: str) -> str:
        what = " ".join([*self.argv, *args])
        code, out, err = await run_tool(
            [*self.argv, *args],
            self.timeout,
            name=f"`{what}`",
            missing="is Staex mcc installed?",
            slow="is mcc running?",
        )
        if code != 0:
            detail = err.decode(errors="replace").strip()[:200] or f"exit status {code}"
            raise OverlayError(f"`{what}` failed: {detail}")
        return out[:MAX_OUTPUT].decode(errors="replace")

    async def own_id(self) -> str:
        return _decode_value(await self.run("id"), "id")

    async def resolve(self, node_id: str) -> str:
        return await self.run("resolve", node_id)


class MccHttp:
    """The loopback HTTP helper. Only loopback IP URLs: a resolver on the network would
    see (and could forge) every peer this node talks to; a host name would need DNS."""

    def __init__(self, url: str, timeout: float = TIMEOUT):
        parts = urlsplit(url)
        try:
            host, port = parts.hostname or "", parts.port or 80
        except ValueError:
            host, port = "", 0
        ip = parse_address(host)
        if parts.scheme != "http" or ip is None or not ip.is_loopback or not port:
            raise OverlayError(
                f"staex_http {url!r}: use a loopback http URL such as http://127.0.0.1:9377 "
                "(no host names, no remote helpers)"
            )
        self.host, self.port = str(ip), port
        self.base = parts.path.rstrip("/")
        self.timeout = timeout

    def _get_sync(self, path: str) -> str:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.base + path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read(MAX_OUTPUT).decode(errors="replace")
            if response.status != 200:
                raise OverlayError(
                    f"Staex helper {self.host}:{self.port}{path}: HTTP {response.status} {body[:120]!r}"
                )
            return body
        finally:
            conn.close()

    async def get(self, path: str) -> str:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._get_sync, path), self.timeout + 1)
        except OverlayError:
            raise
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise OverlayError(
                f"Staex helper http://{self.host}:{self.port} unreachable ({e or type(e).__name__})"
            ) from None

    async def own_id(self) -> str:
        return _decode_value(await self.get("/id"), "id")

    async def resolve(self, node_id: str) -> str:
        return await self.get("/resolve?node-id=" + quote(node_id, safe=""))


class StaexProvider(OverlayProvider):
    name = "staex"
    node_local_addresses = True  # mcc hands out node-local, temporary addresses

    def __init__(self, command: str = "mcc", http: str = "", timeout: float = TIMEOUT):
        self.backend = MccHttp(http, timeout) if http else MccCommand(command, timeout)
        self._own: IPAddress | None = None
        # Latest resolution per Staex id: the addresses are temporary, so only the
        # current ones count as overlay addresses.
        self._resolved: dict[str, IPAddress] = {}

    async def own_id(self) -> str:
        return check_staex_id(await self.backend.own_id())

    async def resolve_id(self, node_id: str) -> IPAddress:
        node_id = check_staex_id(node_id)
        ip = _parse_resolved(await self.backend.resolve(node_id), f"resolve {node_id}")
        self._resolved[node_id] = ip
        return ip

    async def local_address(self) -> str:
        # Own address = what mcc resolves for our own id (asked every time: it is temporary).
        self._own = await self.resolve_id(await self.own_id())
        return str(self._own)

    async def resolve(self, peer: Peer) -> str:
        return str(await self.resolve_id(peer.staex_id or peer.node_id))

    def is_overlay(self, address: str) -> bool:
        ip = parse_address(address)
        if ip is None:
            return False
        return ip == self._own or ip in self._resolved.values()
