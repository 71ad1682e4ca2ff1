"""Overlay-only ICE for aiortc 1.16.0 / aioice 0.13.0 (docs/architecture.md,
"ICE policy").

aiortc has no supported way to restrict ICE to chosen addresses, so this module:
- always builds `RTCConfiguration(iceServers=[], bundlePolicy=MAX_BUNDLE)`: the default
  (None) means Google STUN, and one bundled socket means one address to check;
- installs `OverlayConnection` as `aiortc.rtcicetransport.Connection` (the name aiortc
  looks up when it builds an ICE gatherer). It gathers only on the policy's local
  overlay address(es), accepts remote candidates and STUN checks only from the
  policy's remote address(es), and never resolves mDNS names; after gathering it closes
  and forgets any socket not on a local overlay address (whatever bound it), so checks
  are only ever sent from the overlay even if a later check failed;
- scopes that per call: `OverlayPeerConnection` sets a context variable around every
  method that may build an ICE transport, and each `OverlayConnection` reads it once in
  `__init__`. Two calls with different policies in one process never see each other's.
  A Connection built with no policy in scope fails closed (gathers and accepts nothing);
- checks SDP on parsed fields, never substrings (Copybara's bug): `check_outgoing_sdp`
  before a link is signed, `filter_incoming_sdp` before `setRemoteDescription`. Lines
  are split the way aiortc splits them, and an SDP with any other control character or
  non-ASCII is refused (MalformedSdpError), so no line can hide from a check.

Residual (documented, not fixable here): non-STUN datagrams reaching a bound socket are
not source-checked by aioice; DTLS fingerprints and SRTP authentication reject them."""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import aioice.ice
import aiortc.rtcicetransport
from aioice.candidate import Candidate
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from .errors import NodeError
from .overlay import parse_address

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PrivacyError(NodeError):
    """An SDP or a candidate would break the overlay-only rule: nothing is sent."""


def _ip(text: str) -> IPAddress | None:
    """A literal, unzoned IP address, else None ("x.local", names, "fe80::1%eth0"). In
    SDP an address is never bracketed ("[::1]" is refused, not unwrapped)."""
    if not isinstance(text, str) or "[" in text or "]" in text:
        return None
    return parse_address(text)


def _ips(addresses: Iterable[str], what: str) -> tuple[IPAddress, ...]:
    out = []
    for a in addresses:
        ip = _ip(str(a))
        if ip is None or ip.is_unspecified or ip.is_multicast:
            raise PrivacyError(f"ICE policy: {what} address {a!r} is not a usable IP address")
        out.append(ip)
    return tuple(out)


@dataclass(frozen=True)
class IcePolicy:
    """Where one call may gather and whom it may accept. `local`: this node's overlay
    address(es); `remote`: the peer's overlay address(es) as resolved locally.
    `rewrite_remote` (Staex): the peer's candidates carry its own node-local view of its
    address, so a candidate on the address it reports is rewritten to `remote[0]`."""

    local: tuple[IPAddress, ...]
    remote: tuple[IPAddress, ...]
    rewrite_remote: bool = False
    label: str = field(default="", compare=False)  # for logs: a peer name, never an address

    @classmethod
    def make(
        cls, local: Iterable[str], remote: Iterable[str], *, rewrite_remote: bool = False, label: str = ""
    ) -> IcePolicy:
        policy = cls(_ips(local, "local"), _ips(remote, "remote"), rewrite_remote, label)
        if not policy.local:
            raise PrivacyError("ICE policy: no local overlay address (is the overlay up?)")
        if not policy.remote:
            raise PrivacyError("ICE policy: no remote overlay address for the peer")
        return policy

    def is_local(self, address: str) -> bool:
        return _ip(address) in self.local

    def is_remote(self, address: str) -> bool:
        return _ip(address) in self.remote

    def peer_connection(self) -> OverlayPeerConnection:
        return OverlayPeerConnection(self)


def overlay_configuration() -> RTCConfiguration:
    # iceServers=[] (not None: None means stun.l.google.com); one bundled transport.
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# The policy of the RTCPeerConnection whose method is running; read once by each
# OverlayConnection when aiortc builds it.
_ACTIVE_POLICY: contextvars.ContextVar[IcePolicy | None] = contextvars.ContextVar(
    "media_node_ice_policy", default=None
)


class OverlayConnection(aioice.ice.Connection):
    """aioice Connection confined to one IcePolicy (its gathering and check methods are
    overridden; node/media/hooks.py pins the versions)."""

    def __init__(self, *args, **kwargs):
        # Even if iceServers=None slipped through, never ask a STUN or TURN server.
        kwargs["stun_server"] = None
        kwargs["turn_server"] = None
        super().__init__(*args, **kwargs)
        self.overlay_policy: IcePolicy | None = _ACTIVE_POLICY.get()
        self.checks_received = 0
        if self.overlay_policy is None:
            log.warning("ICE connection built outside an overlay call: it gathers and accepts nothing")

    async def get_component_candidates(self, component: int, addresses: list[str], timeout: int = 5):
        # aioice's own list (every interface but 127.0.0.1) is ignored: only the overlay.
        policy = self.overlay_policy
        mine = [str(ip) for ip in policy.local] if policy else []
        found = await super().get_component_candidates(component, mine, timeout)
        await self._confine_local()
        return [c for c in found if self._is_mine(c)]

    async def gather_candidates(self) -> None:
        await super().gather_candidates()
        # Again here, whatever produced the candidates: this layer holds on its own.
        await self._confine_local()

    def _is_mine(self, c: Candidate) -> bool:
        policy = self.overlay_policy
        return (
            policy is not None
            and c.type == "host"
            and c.transport.lower() == "udp"
            and policy.is_local(c.host)
        )

    async def _confine_local(self) -> None:
        """Close and forget every socket (and candidate) not on the policy's local
        overlay address: checks are only ever paired with, and sent from, what is left."""
        keep, drop = [], []
        for protocol in self._protocols:
            mine = protocol.local_candidate is not None and self._is_mine(protocol.local_candidate)
            (keep if mine else drop).append(protocol)
        if drop:
            log.error("ICE: closed %d local socket(s) outside the overlay policy", len(drop))
        self._protocols[:] = keep
        self._local_candidates[:] = [c for c in self._local_candidates if self._is_mine(c)]
        self._check_list[:] = [p for p in self._check_list if p.protocol in keep]
        for protocol in drop:
            try:
                await protocol.close()
            except Exception:
                log.exception("ICE: closing a socket outside the policy failed")

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        if remote_candidate is not None and not self._acceptable(remote_candidate):
            return  # before aioice sees it: no pairing, no mDNS query
        await super().add_remote_candidate(remote_candidate)

    def _acceptable(self, c: Candidate) -> bool:
        policy = self.overlay_policy
        ok = (
            policy is not None
            and c.type == "host"
            and c.transport.lower() == "udp"
            and policy.is_remote(c.host)
        )
        if not ok:
            log.info("ICE: dropped a remote %s candidate outside the overlay policy", c.type)
        return ok

    def request_received(self, message, addr, protocol) -> None:
        policy = self.overlay_policy
        if policy is None or not policy.is_remote(addr[0]):
            return  # no Binding response, no peer-reflexive candidate
        self.checks_received += 1  # liveness: the peer's consent checks (calls.py)
        super().request_received(message, addr, protocol)

    def selected_pair(self) -> tuple[str, str] | None:
        """(local, remote) address of the nominated pair of component 1, if any."""
        pair = self._nominated.get(1)
        if pair is None:
            return None
        return pair.local_candidate.host, pair.remote_addr[0]


def install() -> None:
    """Make aiortc build OverlayConnection (process-wide; the behaviour is per call)."""
    aiortc.rtcicetransport.Connection = OverlayConnection


install()


class OverlayPeerConnection(RTCPeerConnection):
    """An RTCPeerConnection bound to one IcePolicy: iceServers=[], MAX_BUNDLE, ICE
    transports built with the policy in scope, remote SDP filtered, local SDP checked."""

    def __init__(self, policy: IcePolicy):
        if not isinstance(policy, IcePolicy):
            raise TypeError("OverlayPeerConnection needs an IcePolicy")
        install()  # idempotent: someone may have put the original back
        super().__init__(overlay_configuration())
        self.policy = policy

    @contextlib.contextmanager
    def _policy_in_scope(self):
        """Any ICE transport aiortc builds inside this block gets this call's policy."""
        token = _ACTIVE_POLICY.set(self.policy)
        try:
            yield
        finally:
            _ACTIVE_POLICY.reset(token)

    # Every public method that may build a transport (tests/calls/test_ice.py checks the list).
    def addTrack(self, track):
        with self._policy_in_scope():
            return super().addTrack(track)

    def addTransceiver(self, trackOrKind, direction: str = "sendrecv"):
        with self._policy_in_scope():
            return super().addTransceiver(trackOrKind, direction=direction)

    def createDataChannel(self, label, *args, **kwargs):
        with self._policy_in_scope():
            return super().createDataChannel(label, *args, **kwargs)

    async def createOffer(self) -> RTCSessionDescription:
        with self._policy_in_scope():
            return await super().createOffer()

    async def createAnswer(self) -> RTCSessionDescription:
        with self._policy_in_scope():
            return await super().createAnswer()

    async def setRemoteDescription(self, sessionDescription: RTCSessionDescription) -> None:
        # Defence in depth: callers filter first (to see what was dropped); filtering an
        # already filtered SDP changes nothing.
        sdp = filter_incoming_sdp(sessionDescription.sdp, self.policy)
        with self._policy_in_scope():
            await super().setRemoteDescription(RTCSessionDescription(sdp=sdp, type=sessionDescription.type))

    async def setLocalDescription(self, sessionDescription=None) -> None:
        with self._policy_in_scope():
            await super().setLocalDescription(sessionDescription)
        check_outgoing_sdp(self.localDescription.sdp, self.policy)

    async def addIceCandidate(self, candidate) -> None:
        with self._policy_in_scope():
            await super().addIceCandidate(candidate)


def ice_connections(pc: RTCPeerConnection) -> list[aioice.ice.Connection]:
    """The aioice connections under a peer connection (one with MAX_BUNDLE)."""
    found: list[aioice.ice.Connection] = []
    for transceiver in pc.getTransceivers():
        conn = transceiver.receiver.transport.transport.iceGatherer._connection
        if conn not in found:
            found.append(conn)
    return found


def selected_pair(pc: RTCPeerConnection) -> tuple[str, str] | None:
    """(local, remote) overlay addresses of the call's selected candidate pair."""
    for conn in ice_connections(pc):
        if isinstance(conn, OverlayConnection):
            pair = conn.selected_pair()
            if pair is not None:
                return pair
    return None


# --- SDP checks (parsed fields, never substrings) ----------------------------------------


@dataclass
class SdpCandidate:
    """One `a=candidate:` line, parsed by aioice's own parser."""

    candidate: Candidate

    @classmethod
    def parse(cls, line: str) -> SdpCandidate:
        value = line[len("a=candidate:") :]
        bits = value.split()
        if len(bits) < 8 or bits[6] != "typ":
            raise PrivacyError("malformed candidate line")
        try:
            return cls(Candidate.from_sdp(value))
        except (ValueError, IndexError, KeyError) as e:
            raise PrivacyError(f"unparseable candidate line ({type(e).__name__})") from None

    def line(self) -> str:
        return "a=candidate:" + self.candidate.to_sdp()


class MalformedSdpError(PrivacyError):
    """An SDP with characters that would let two parsers see different lines: refused."""


def _split_lines(sdp: str, what: str = "SDP") -> list[str]:
    """The SDP's lines exactly as aiortc sees them (it parses with str.splitlines(),
    which also breaks on a bare CR, VT, FF, \\x1c-\\x1e, NEL, U+2028...). Anything but
    printable ASCII and CRLF/LF line ends is refused, so no line can hide from a check."""
    if not sdp.isascii():
        raise MalformedSdpError(f"{what} contains non-ASCII characters")
    for i, ch in enumerate(sdp):
        if ch == "\n" or ("\x20" <= ch < "\x7f"):
            continue
        if ch == "\r" and sdp[i + 1 : i + 2] == "\n":
            continue
        raise MalformedSdpError(
            f"{what} contains a control character ({ord(ch):#04x}) outside a CRLF/LF line end"
        )
    return [line for line in sdp.splitlines() if line != ""]


def _join_lines(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def _connection_address(value: str) -> tuple[str, str, str]:
    """`IN IP4 1.2.3.4` (c=, and the tail of a=rtcp) -> (nettype, addrtype, address)."""
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise PrivacyError(f"unexpected connection data {value!r}")
    # a c= address may carry /ttl or /count suffixes (multicast only): refuse them.
    return parts[0], parts[1], parts[2]


def _is_unspecified(address: str) -> bool:
    ip = _ip(address)
    return ip is not None and ip.is_unspecified


def check_outgoing_sdp(sdp: str, policy: IcePolicy) -> None:
    """Raise PrivacyError unless every address in the SDP is this node's overlay
    address: `c=`, `a=candidate` (typ host, udp, no raddr), `a=rtcp`, `o=`; `m=` ports
    must be a gathered candidate's port (or the discard port 9 / 0). The unspecified
    address (0.0.0.0, ::) is allowed in `o=`/`a=rtcp` only: it names no host."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise PrivacyError("outgoing SDP is empty")
    candidates = 0
    ports: set[int] = set()
    m_ports: list[int] = []
    for line in _split_lines(sdp, "outgoing SDP"):
        key, _, value = line.partition("=")
        if key == "c":
            _, _, address = _connection_address(value)
            if not policy.is_local(address):
                raise PrivacyError(
                    "outgoing SDP: c= line is not this node's overlay address (refusing to sign it)"
                )
        elif key == "o":
            parts = value.split()
            if len(parts) != 6:
                raise PrivacyError("outgoing SDP: malformed o= line")
            address = parts[5]
            if not (_is_unspecified(address) or policy.is_local(address)):
                raise PrivacyError("outgoing SDP: o= line names a non-overlay address")
        elif key == "m":
            parts = value.split()
            if len(parts) < 3 or not parts[1].split("/")[0].isdigit():
                raise PrivacyError("outgoing SDP: malformed m= line")
            m_ports.append(int(parts[1].split("/")[0]))
        elif key == "a" and value.startswith("candidate:"):
            c = SdpCandidate.parse(line).candidate
            if c.type != "host":
                raise PrivacyError(f"outgoing SDP: a {c.type} candidate (only typ host is allowed)")
            if c.transport.lower() != "udp":
                raise PrivacyError("outgoing SDP: a non-UDP candidate")
            if c.related_address is not None or c.related_port is not None:
                raise PrivacyError("outgoing SDP: a candidate with raddr/rport")
            if not policy.is_local(c.host):
                raise PrivacyError(
                    "outgoing SDP: a candidate that is not on this node's overlay "
                    "address (refusing to sign it)"
                )
            candidates += 1
            ports.add(int(c.port))
        elif key == "a" and value.startswith("rtcp:"):
            parts = value[len("rtcp:") :].split(None, 1)
            if not parts or not parts[0].isdigit():
                raise PrivacyError("outgoing SDP: malformed a=rtcp line")
            if len(parts) == 2:
                _, _, address = _connection_address(parts[1])
                if not (_is_unspecified(address) or policy.is_local(address)):
                    raise PrivacyError("outgoing SDP: a=rtcp names a non-overlay address")
    if candidates == 0:
        raise PrivacyError(
            "outgoing SDP has no candidate on the overlay address (is the overlay address on this machine?)"
        )
    for port in m_ports:
        if port not in ports and port not in (0, 9):
            raise PrivacyError("outgoing SDP: an m= port that no overlay candidate owns")


def filter_incoming_sdp(sdp: str, policy: IcePolicy, *, reported: str = "") -> str:
    """The SDP with only candidates on the peer's locally resolved overlay address.

    Dropped: `.local` names, srflx/relay/prflx, non-UDP, and every other address.
    With `policy.rewrite_remote` (Staex), a host candidate on `reported` (the address the
    peer says it has, node-local to it) gets the locally resolved address instead — the
    candidate's address field is replaced after parsing, never by text substitution.
    Raises PrivacyError when no candidate is left (the call could never connect)."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise PrivacyError("incoming SDP is empty")
    reported_ip = _ip(reported) if reported else None
    target = policy.remote[0]
    out: list[str] = []
    kept = dropped = 0
    for line in _split_lines(sdp, "incoming SDP"):
        if line.startswith("a=candidate:"):
            try:
                c = SdpCandidate.parse(line)
            except PrivacyError:
                dropped += 1
                continue
            cand = c.candidate
            host_ip = _ip(cand.host)
            if cand.type != "host" or cand.transport.lower() != "udp" or host_ip is None:
                dropped += 1
                continue
            if host_ip in policy.remote:
                pass
            elif (
                policy.rewrite_remote
                and reported_ip is not None
                and host_ip == reported_ip
                and host_ip.version == target.version
            ):
                cand.host = str(target)
            else:
                dropped += 1
                continue
            cand.related_address = None
            cand.related_port = None
            out.append(c.line())
            kept += 1
        elif line.startswith("c=") and policy.rewrite_remote and reported_ip is not None:
            nettype, addrtype, address = _connection_address(line[2:])
            if _ip(address) == reported_ip and reported_ip.version == target.version:
                address = str(target)
            out.append(f"c={nettype} {addrtype} {address}")
        else:
            out.append(line)
    if dropped:
        log.info(
            "ICE: dropped %d incoming candidate(s) outside the overlay policy%s",
            dropped,
            f" ({policy.label})" if policy.label else "",
        )
    if kept == 0:
        raise PrivacyError(
            "the peer's SDP has no candidate on its overlay address as this node "
            "resolves it (check the peer's overlay binding in peers.toml)"
        )
    return _join_lines(out)


def sdp_addresses(sdp: str) -> dict[str, list[str]]:
    """Addresses an SDP names, by kind (tests and the privacy harness)."""
    found: dict[str, list[str]] = {"c": [], "candidate": [], "rtcp": []}
    for line in _split_lines(sdp):
        if line.startswith("c="):
            found["c"].append(_connection_address(line[2:])[2])
        elif line.startswith("a=candidate:"):
            found["candidate"].append(SdpCandidate.parse(line).candidate.host)
        elif line.startswith("a=rtcp:"):
            parts = line[len("a=rtcp:") :].split(None, 1)
            if len(parts) == 2:
                found["rtcp"].append(_connection_address(parts[1])[2])
    return found


__all__ = [
    "IcePolicy",
    "MalformedSdpError",
    "OverlayConnection",
    "OverlayPeerConnection",
    "PrivacyError",
    "check_outgoing_sdp",
    "filter_incoming_sdp",
    "ice_connections",
    "install",
    "overlay_configuration",
    "sdp_addresses",
    "selected_pair",
]
