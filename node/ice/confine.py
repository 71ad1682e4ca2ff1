"""Confinement: aioice gathers, pairs and answers only inside one call's IcePolicy.

aiortc has no supported way to restrict ICE, so this module:
- always builds `RTCConfiguration(iceServers=[])`: the default (None) means Google
  STUN. Offering, with `bundlePolicy=MAX_BUNDLE` (one socket, one address to check);
  answering, with MAX_COMPAT, so aiortc follows the offer's BUNDLE group: an unbundled
  offer gets one socket per m-line, each on the overlay address and each checked;
- installs `OverlayConnection` as `aiortc.rtcicetransport.Connection` (the name aiortc
  looks up when it builds an ICE gatherer) when this module is imported, so any peer
  connection in the process, even a plain one, fails closed. It gathers only on the
  policy's local overlay address(es), accepts remote candidates and STUN checks only
  from the policy's remote address(es), and never resolves mDNS names; after gathering
  it closes and forgets any socket not on a local overlay address (whatever bound it),
  so checks are only ever sent from the overlay even if a later check failed;
- scopes that per call: `OverlayPeerConnection` sets a context variable around every
  method that may build an ICE transport, and each `OverlayConnection` reads it once in
  `__init__`. Two calls with different policies in one process never see each other's.
  A Connection built with no policy in scope fails closed (gathers and accepts nothing).

Residual (documented, not fixable here): non-STUN datagrams reaching a
bound socket are not source-checked by aioice; DTLS fingerprints and SRTP
authentication reject them."""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import logging
from collections.abc import Iterator
from typing import Any

import aioice.ice
import aiortc.rtcicetransport
from aioice import stun
from aioice.candidate import Candidate
from aioice.ice import StunProtocol
from aioice.stun import Message
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from ..errors import PrivacyError
from .policy import IcePolicy
from .sdp import check_outgoing_sdp, filter_incoming_sdp

log = logging.getLogger(__name__)
_PENDING = (aioice.ice.CandidatePair.State.WAITING, aioice.ice.CandidatePair.State.FROZEN)


def overlay_configuration(*, answering: bool = False) -> RTCConfiguration:
    # iceServers=[] (not None: None means stun.l.google.com). Offering: one bundled
    # transport. Answering: MAX_COMPAT builds a transport per m-line and then follows
    # the offer's BUNDLE group (RFC 8843: an answerer bundles only what was offered).
    policy = RTCBundlePolicy.MAX_COMPAT if answering else RTCBundlePolicy.MAX_BUNDLE
    return RTCConfiguration(iceServers=[], bundlePolicy=policy)


# The policy of the RTCPeerConnection whose method is running; read once by each
# OverlayConnection when aiortc builds it.
_ACTIVE_POLICY: contextvars.ContextVar[IcePolicy | None] = contextvars.ContextVar(
    "media_node_ice_policy", default=None
)


class OverlayConnection(aioice.ice.Connection):
    """aioice Connection confined to one IcePolicy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Even if iceServers=None slipped through, never ask a STUN or TURN server.
        kwargs["stun_server"] = None
        kwargs["turn_server"] = None
        super().__init__(*args, **kwargs)
        self.overlay_policy: IcePolicy | None = _ACTIVE_POLICY.get()
        self.checks_received = 0
        self.late_checks_refused = 0  # checks refused after nomination (another port, a role flip)
        if self.overlay_policy is None:
            log.warning("ICE connection built outside an overlay call: it gathers and accepts nothing")

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Candidate]:
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
        keep: list[StunProtocol] = []
        drop: list[StunProtocol] = []
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

    def request_received(self, message: Message, addr: tuple[str, int], protocol: StunProtocol) -> None:
        policy = self.overlay_policy
        if policy is None or not policy.is_remote(addr[0]):
            return  # no Binding response, no peer-reflexive candidate
        if self._after_nomination_refuses(message, addr):
            return
        self.checks_received += 1  # liveness: the peer's consent checks (node.calls)
        super().request_received(message, addr, protocol)

    def _after_nomination_refuses(self, message: stun.Message, addr: tuple[str, int]) -> bool:
        """Once a pair is nominated, only its remote address and port may check, and never
        with a role conflict: the ICE password is in every unsealed link, so anyone on
        the peer's address could otherwise answer checks from another port or flip this
        node's role mid-call. aiortc 1.16 makes no ICE restart (new credentials come
        only with a new offer, which is a new call), so nothing legitimate is refused."""
        nominated = [pair.remote_addr for pair in self._nominated.values()]
        if not nominated:
            return False
        source = (_ip_key(addr[0]), addr[1])
        if source not in [(_ip_key(host), port) for host, port in nominated]:
            self.late_checks_refused += 1
            log.info("ICE: refused a check from another port after nomination")
            return True
        role = "ICE-CONTROLLING" if self.ice_controlling else "ICE-CONTROLLED"
        if role in message.attributes:
            self.late_checks_refused += 1
            log.info("ICE: refused a role conflict after nomination")
            return True
        return False

    def _check_periodic(self) -> bool:
        """Start every pending connectivity check at once. aioice starts one per call and
        connect() sleeps 20 ms between calls (RFC 8445's Ta pacing, meant for hosts with
        dozens of candidate pairs), so even a single pair waited 20 ms before connect()
        looked at its result: a fifth of a view's time to first frame. A confined call
        has one pair per overlay address, so there is nothing to pace."""
        if self._check_list_done:
            return False
        for pair in self._check_list:  # highest priority first, as aioice orders them
            if pair.state in _PENDING:
                self.check_start_task(pair)  # a no-op for a pair already started
        return self._remote_candidates_expected()  # trickled candidates: come back in 20 ms

    def selected_pair(self) -> tuple[str, str] | None:
        """(local, remote) address of the nominated pair of component 1, if any."""
        pair = self._nominated.get(1)
        if pair is None:
            return None
        return pair.local_candidate.host, pair.remote_addr[0]


def _ip_key(host: str) -> str:
    """One spelling per address (an IPv6 address may come with a zone or in another case)."""
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return host


def install() -> None:
    """Make aiortc build OverlayConnection (process-wide; the behaviour is per call).
    Runs once, when this module is imported."""
    aiortc.rtcicetransport.Connection = OverlayConnection  # type: ignore[attr-defined]


def installed() -> bool:
    return getattr(aiortc.rtcicetransport, "Connection", None) is OverlayConnection


install()


class OverlayPeerConnection(RTCPeerConnection):
    """An RTCPeerConnection bound to one IcePolicy: iceServers=[], MAX_BUNDLE (or, with
    `answering`, the offer's bundling), ICE
    transports built with the policy in scope, remote SDP filtered, local SDP checked."""

    def __init__(self, policy: IcePolicy, *, answering: bool = False):
        if not isinstance(policy, IcePolicy):
            raise TypeError("OverlayPeerConnection needs an IcePolicy")
        if not installed():  # someone put aiortc's own back: fail closed, loudly
            raise PrivacyError("aiortc no longer builds the overlay-confined ICE connection")
        super().__init__(overlay_configuration(answering=answering))
        self.policy = policy

    @contextlib.contextmanager
    def _policy_in_scope(self) -> Iterator[None]:
        """Any ICE transport aiortc builds inside this block gets this call's policy."""
        token = _ACTIVE_POLICY.set(self.policy)
        try:
            yield
        finally:
            _ACTIVE_POLICY.reset(token)

    # Every public method that may build a transport (tests/ice/test_ice.py checks the list).
    def addTrack(self, track: MediaStreamTrack) -> RTCRtpSender:
        with self._policy_in_scope():
            return super().addTrack(track)

    def addTransceiver(
        self, trackOrKind: str | MediaStreamTrack, direction: str = "sendrecv"
    ) -> RTCRtpTransceiver:
        with self._policy_in_scope():
            return super().addTransceiver(trackOrKind, direction=direction)

    def createDataChannel(self, label: str, *args: Any, **kwargs: Any) -> RTCDataChannel:
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

    async def setLocalDescription(self, sessionDescription: RTCSessionDescription | None = None) -> None:
        with self._policy_in_scope():
            await super().setLocalDescription(sessionDescription)
        check_outgoing_sdp(self.localDescription.sdp, self.policy)

    async def addIceCandidate(self, candidate: RTCIceCandidate | None) -> None:
        with self._policy_in_scope():
            await super().addIceCandidate(candidate)


def ice_connections(pc: RTCPeerConnection) -> list[aioice.ice.Connection]:
    """The aioice connections under a peer connection (one with MAX_BUNDLE)."""
    found: list[aioice.ice.Connection] = []
    for transceiver in pc.getTransceivers():
        conn: aioice.ice.Connection = transceiver.receiver.transport.transport.iceGatherer._connection
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


__all__ = [
    "OverlayConnection",
    "OverlayPeerConnection",
    "ice_connections",
    "install",
    "installed",
    "overlay_configuration",
    "selected_pair",
]
