"""Overlay-only ICE (node/ice/): the hooks into aiortc/aioice exist as we hook them,
candidates and STUN checks from outside the policy never reach aioice, outgoing SDP is
checked on parsed fields, and policies are scoped per peer connection."""

from __future__ import annotations

import asyncio
import inspect

import aioice.ice
import aioice.stun
import aiortc.rtcicetransport
import pytest
from aioice.candidate import Candidate
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcicetransport import RTCIceGatherer, connection_kwargs
from aiortc.rtcpeerconnection import RTCPeerConnection as PlainPC

from node import ice
from node.ice import (
    IcePolicy,
    OverlayConnection,
    PrivacyError,
    check_outgoing_sdp,
    confine,
    filter_incoming_sdp,
)
from node.ice.policy import literal_ip

A, B, C = "127.0.0.1", "127.0.0.2", "127.0.0.3"


# --- the internals we hook (fail loudly if upstream changes them) ----------------------


def _names(fn) -> set[str]:
    """Every global/attribute name a function's code uses, nested comprehensions included."""
    found, todo = set(), [fn.__code__]
    while todo:
        code = todo.pop()
        found |= set(code.co_names)
        todo += [c for c in code.co_consts if inspect.iscode(c)]
    return found


def test_aiortc_builds_its_ice_connection_through_the_module_name_we_replace():
    assert aiortc.rtcicetransport.Connection is OverlayConnection
    # RTCIceGatherer.__init__ looks the global name up at call time.
    assert "Connection" in _names(RTCIceGatherer.__init__)
    assert RTCIceGatherer(iceServers=[])._connection.__class__ is OverlayConnection


def test_aioice_signatures_we_override():
    sig = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert sig(aioice.ice.Connection.get_component_candidates) == [
        "self",
        "component",
        "addresses",
        "timeout",
    ]
    assert sig(aioice.ice.Connection.add_remote_candidate) == ["self", "remote_candidate"]
    assert sig(aioice.ice.Connection.request_received) == ["self", "message", "addr", "protocol"]
    init = inspect.signature(aioice.ice.Connection.__init__).parameters
    assert {"stun_server", "turn_server", "ice_controlling"} <= set(init)
    # gather_candidates hands the host addresses to get_component_candidates by keyword;
    # every STUN request goes through request_received; mDNS is resolved inside
    # add_remote_candidate (so returning early means no multicast query).
    assert "get_component_candidates" in _names(aioice.ice.Connection.gather_candidates)
    assert "request_received" in _names(aioice.ice.StunProtocol.datagram_received)
    assert "get_or_create_mdns_protocol" in _names(aioice.ice.Connection.add_remote_candidate)
    # selected_pair() reads the nominated pairs.
    conn = aioice.ice.Connection(ice_controlling=True)
    assert isinstance(conn._nominated, dict)
    assert {"local_candidate", "remote_addr"} <= set(dir(aioice.ice.CandidatePair))


def test_default_ice_servers_are_google_stun_and_we_never_use_them():
    # The trap: RTCConfiguration() means iceServers=None, which means Google STUN.
    assert RTCConfiguration().iceServers is None
    default = RTCIceGatherer.getDefaultIceServers()
    assert connection_kwargs(default)["stun_server"] == ("stun.l.google.com", 19302)
    # Even given None, our Connection drops the STUN server.
    assert RTCIceGatherer(iceServers=None)._connection.stun_server is None
    config = ice.overlay_configuration()
    assert config.iceServers == [] and config.bundlePolicy == RTCBundlePolicy.MAX_BUNDLE
    pc = ice.OverlayPeerConnection(IcePolicy.make([A], [B]))
    assert pc._RTCPeerConnection__configuration.iceServers == []


def test_aioice_host_addresses_skip_loopback_so_we_supply_ours():
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)


def test_every_pc_method_that_builds_a_transport_runs_with_the_policy_in_scope():
    makers = {
        "_RTCPeerConnection__createTransceiver",
        "_RTCPeerConnection__createSctpTransport",
        "_RTCPeerConnection__createDtlsTransport",
    }
    wrapped = {
        "addTrack",
        "addTransceiver",
        "createDataChannel",
        "setRemoteDescription",
        "setLocalDescription",
        "addIceCandidate",
        "createOffer",
        "createAnswer",
    }
    callers = set()
    for name, fn in vars(PlainPC).items():
        if getattr(fn, "__code__", None) is not None and makers & _names(fn):
            callers.add(name)
    private = {n for n in callers if n.startswith("_RTCPeerConnection__")}
    # Private makers call each other; every public entry point must be one we wrap.
    assert callers - private <= wrapped, callers - private - wrapped
    assert wrapped <= set(vars(ice.OverlayPeerConnection))
    assert "RTCIceGatherer" in _names(PlainPC._RTCPeerConnection__createDtlsTransport)


# --- helpers -----------------------------------------------------------------------------


async def _offer(policy: IcePolicy) -> tuple[RTCPeerConnection, str]:
    pc = ice.OverlayPeerConnection(policy)
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def _with_extra_candidates(sdp: str, lines: list[str]) -> str:
    out = []
    for line in sdp.splitlines():
        if line == "a=end-of-candidates":
            out.extend(lines)
        out.append(line)
    return "\r\n".join(out) + "\r\n"


BAD_CANDIDATES = [
    "a=candidate:1 1 udp 2130706431 10.9.8.7 4000 typ host",  # another address
    "a=candidate:2 1 udp 2130706431 0f1e2d3c-aaaa-bbbb-cccc-123456789abc.local 4001 typ host",  # mDNS
    f"a=candidate:3 1 udp 1694498815 {A} 4002 typ srflx raddr 10.9.8.7 rport 4000",  # srflx on peer addr
    f"a=candidate:4 1 udp 16777215 {A} 4003 typ relay raddr 10.9.8.7 rport 4000",  # relay
    f"a=candidate:5 1 udp 1853824767 {A} 4004 typ prflx",  # prflx
    f"a=candidate:6 1 tcp 1518280447 {A} 4005 typ host tcptype passive",  # tcp
    "a=candidate:7 1 udp 2130706431 127.0.0.10 4006 typ host",  # prefix of the peer's address
]


# --- incoming candidates ------------------------------------------------------------------


async def test_foreign_candidates_are_filtered_from_incoming_sdp():
    peer_pc, sdp = await _offer(IcePolicy.make([A], [B]))
    try:
        dirty = _with_extra_candidates(sdp, BAD_CANDIDATES)
        clean = filter_incoming_sdp(dirty, IcePolicy.make([B], [A]))
        cands = [ln for ln in clean.splitlines() if ln.startswith("a=candidate:")]
        hosts = {Candidate.from_sdp(ln[12:]).host for ln in cands}
        assert hosts == {A}
        assert all(" typ host" in ln and " udp " in ln for ln in cands)
        assert ".local" not in clean and "10.9.8.7" not in clean and "127.0.0.10 " not in clean
        # nothing on the peer's address at all: refused, with a message naming the fix
        with pytest.raises(PrivacyError, match="peers.toml"):
            filter_incoming_sdp(dirty, IcePolicy.make([B], [C]))
    finally:
        await peer_pc.close()


async def test_foreign_candidates_never_reach_aioice_even_unfiltered(monkeypatch):
    """The Connection itself refuses them: an unfiltered SDP (or addIceCandidate) cannot
    get a foreign, mDNS, srflx or relay candidate into aioice, and no mDNS query starts."""
    reached: list[str] = []
    original = aioice.ice.Connection._add_remote_candidate

    def spy(self, candidate, host):
        reached.append(f"{candidate.host} {candidate.type}")
        return original(self, candidate, host)

    async def no_mdns(*a, **k):
        raise AssertionError("an mDNS query was started")

    monkeypatch.setattr(aioice.ice.Connection, "_add_remote_candidate", spy)
    monkeypatch.setattr(aioice.ice, "get_or_create_mdns_protocol", no_mdns)

    conn_policy = IcePolicy.make([B], [A])
    with_ctx = confine._ACTIVE_POLICY.set(conn_policy)
    try:
        conn = OverlayConnection(ice_controlling=False)
    finally:
        confine._ACTIVE_POLICY.reset(with_ctx)
    for line in BAD_CANDIDATES:
        await conn.add_remote_candidate(Candidate.from_sdp(line[12:]))
    assert reached == [] and conn.remote_candidates == []
    await conn.add_remote_candidate(Candidate.from_sdp(f"9 1 udp 2130706431 {A} 4100 typ host"))
    assert reached == [f"{A} host"]  # the test can fail: a good one does reach aioice

    # the same through a whole peer connection, bypassing filter_incoming_sdp
    reached.clear()
    monkeypatch.setattr(confine, "filter_incoming_sdp", lambda sdp, policy, **k: sdp)
    peer_pc, sdp = await _offer(IcePolicy.make([A], [B]))
    pc = ice.OverlayPeerConnection(conn_policy)
    try:
        await pc.setRemoteDescription(
            RTCSessionDescription(_with_extra_candidates(sdp, BAD_CANDIDATES), "offer")
        )
        assert reached == [f"{A} host"]
        (connection,) = ice.ice_connections(pc)
        assert [c.host for c in connection.remote_candidates] == [A]
    finally:
        await pc.close()
        await peer_pc.close()


class _RecordingProtocol:
    def __init__(self):
        self.sent = []

    def send_stun(self, message, addr):
        self.sent.append((message, addr))


def _binding_request(conn: OverlayConnection) -> aioice.stun.Message:
    msg = aioice.stun.Message(
        message_method=aioice.stun.Method.BINDING, message_class=aioice.stun.Class.REQUEST
    )
    msg.attributes["USERNAME"] = f"{conn.local_username}:peer"
    msg.attributes["PRIORITY"] = 1853824767
    msg.attributes["ICE-CONTROLLING"] = 1
    msg.add_message_integrity(conn.local_password.encode())
    return aioice.stun.parse_message(bytes(msg))


async def test_stun_checks_from_outside_the_policy_get_no_response_and_no_prflx():
    token = confine._ACTIVE_POLICY.set(IcePolicy.make([B], [A]))
    try:
        conn = OverlayConnection(ice_controlling=False)
    finally:
        confine._ACTIVE_POLICY.reset(token)
    proto = _RecordingProtocol()
    conn.request_received(_binding_request(conn), ("10.9.8.7", 5000), proto)
    conn.request_received(_binding_request(conn), ("127.0.0.10", 5000), proto)
    assert proto.sent == [] and list(conn._early_checks) == [] and conn._check_list == []
    conn.request_received(_binding_request(conn), (A, 5000), proto)
    assert len(proto.sent) == 1 and proto.sent[0][1] == (A, 5000)  # the allowed peer is answered


async def test_a_connection_without_a_policy_fails_closed():
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # plain aiortc: no policy in scope
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        assert "a=candidate:" not in sdp
        (conn,) = ice.ice_connections(pc)
        assert conn.overlay_policy is None
        await conn.add_remote_candidate(Candidate.from_sdp(f"9 1 udp 2130706431 {A} 4100 typ host"))
        assert conn.remote_candidates == []
        proto = _RecordingProtocol()
        conn.request_received(_binding_request(conn), (A, 5000), proto)
        assert proto.sent == []
        with pytest.raises(PrivacyError):
            check_outgoing_sdp(sdp, IcePolicy.make([A], [B]))
    finally:
        await pc.close()


# --- outgoing SDP --------------------------------------------------------------------------


def _edit(sdp: str, old_prefix: str, new_line: str) -> str:
    lines = sdp.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith(old_prefix))
    lines[i] = new_line
    return "\r\n".join(lines) + "\r\n"


async def test_outgoing_sdp_with_a_non_overlay_address_is_refused():
    policy = IcePolicy.make([A], [B])
    pc, sdp = await _offer(policy)
    try:
        check_outgoing_sdp(sdp, policy)  # the real one passes
        cand = next(ln for ln in sdp.splitlines() if ln.startswith("a=candidate:"))
        c = Candidate.from_sdp(cand[12:])
        leaks = {
            "c= on a LAN address": _edit(sdp, "c=", "c=IN IP4 192.168.1.20"),
            "candidate elsewhere": _edit(sdp, "a=candidate:", cand.replace(f" {A} ", " 192.168.1.20 ")),
            "candidate on a prefix-alike": _edit(sdp, "a=candidate:", cand.replace(f" {A} ", f" {A}0 ")),
            "srflx": _edit(sdp, "a=candidate:", cand.replace("typ host", f"typ srflx raddr {A} rport 1")),
            "mdns": _edit(sdp, "a=candidate:", cand.replace(f" {A} ", " abc.local ")),
            "rtcp": _edit(sdp, "a=rtcp:", "a=rtcp:9 IN IP4 192.168.1.20"),
            "m= port": _edit(sdp, "m=audio", f"m=audio {c.port + 1} UDP/TLS/RTP/SAVPF 96 9 0 8"),
            "origin": _edit(sdp, "o=", "o=- 1 1 IN IP4 192.168.1.20"),
        }
        for what, bad in leaks.items():
            with pytest.raises(PrivacyError):
                check_outgoing_sdp(bad, policy)
                pytest.fail(f"accepted: {what}")
        # The PC refuses to finish setLocalDescription with an address outside its policy.
        with pytest.raises(PrivacyError):
            check_outgoing_sdp(sdp, IcePolicy.make([C], [B]))
    finally:
        await pc.close()


# --- scoped per call ----------------------------------------------------------------------


async def test_two_calls_with_different_policies_in_one_process():
    """A<->B connect; meanwhile C (another node's policy) gathers in the same loop. Each
    gathers only on its own address and each connection pairs only with its peer."""
    pa = ice.OverlayPeerConnection(IcePolicy.make([A], [B]))
    pb = ice.OverlayPeerConnection(IcePolicy.make([B], [A]))
    pc3 = ice.OverlayPeerConnection(IcePolicy.make([C], ["127.0.0.4"]))
    try:
        pb.addTransceiver("video", direction="recvonly")
        pc3.addTransceiver("video", direction="recvonly")
        # interleave the two gatherings in one event loop
        await asyncio.gather(
            pb.setLocalDescription(await pb.createOffer()), pc3.setLocalDescription(await pc3.createOffer())
        )
        assert ice.sdp_addresses(pb.localDescription.sdp)["candidate"] == [B]
        assert ice.sdp_addresses(pc3.localDescription.sdp)["candidate"] == [C]
        await pa.setRemoteDescription(pb.localDescription)
        pa.addTrack(VideoStreamTrack())
        await pa.setLocalDescription(await pa.createAnswer())
        assert set(ice.sdp_addresses(pa.localDescription.sdp)["c"]) == {A}
        await pb.setRemoteDescription(pa.localDescription)
        for _ in range(100):
            if pa.connectionState == pb.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        assert pa.connectionState == pb.connectionState == "connected"
        assert ice.selected_pair(pa) == (A, B) and ice.selected_pair(pb) == (B, A)
        (ca,), (cb,), (cc,) = ice.ice_connections(pa), ice.ice_connections(pb), ice.ice_connections(pc3)
        assert ca.overlay_policy.local == (literal_ip(A),) and cb.overlay_policy.local == (literal_ip(B),)
        assert cc.overlay_policy.local == (literal_ip(C),)
        assert [c.host for c in cc.local_candidates] == [C]
    finally:
        await asyncio.gather(pa.close(), pb.close(), pc3.close())


# --- Staex: node-local addresses are rewritten on parsed fields ----------------------------


async def test_staex_candidates_are_rewritten_to_the_locally_resolved_address():
    pc, sdp = await _offer(IcePolicy.make([A], [B]))
    try:
        # what a Staex peer would send: its own node-local view of its address (10.83.0.1)
        cand = next(ln for ln in sdp.splitlines() if ln.startswith("a=candidate:"))
        peer_sdp = _edit(sdp, "a=candidate:", cand.replace(f" {A} ", " 10.83.0.1 "))
        peer_sdp = peer_sdp.replace(f"c=IN IP4 {A}\r\n", "c=IN IP4 10.83.0.1\r\n")
        peer_sdp = _with_extra_candidates(
            peer_sdp,
            [
                "a=candidate:8 1 udp 2130706431 10.83.0.10 4000 typ host",  # Copybara's substring trap
                "a=candidate:9 1 udp 1694498815 10.83.0.1 4001 typ srflx raddr 10.83.0.1 rport 4000",
            ],
        )
        staex = IcePolicy.make(["10.83.0.2"], ["10.83.0.7"], rewrite_remote=True)
        clean = filter_incoming_sdp(peer_sdp, staex, reported="10.83.0.1")
        addrs = ice.sdp_addresses(clean)
        assert addrs["candidate"] == ["10.83.0.7"] and set(addrs["c"]) == {"10.83.0.7"}
        assert "10.83.0.10" not in clean and "srflx" not in clean
        # the port and the rest of the candidate are untouched
        assert (
            Candidate.from_sdp(cand[12:]).port
            == Candidate.from_sdp(
                next(ln for ln in clean.splitlines() if ln.startswith("a=candidate:"))[12:]
            ).port
        )
        # without the rewrite rule (or without the reported address) nothing survives
        with pytest.raises(PrivacyError):
            filter_incoming_sdp(peer_sdp, IcePolicy.make(["10.83.0.2"], ["10.83.0.7"]), reported="10.83.0.1")
        with pytest.raises(PrivacyError):
            filter_incoming_sdp(peer_sdp, staex)
    finally:
        await pc.close()


async def test_ipv6_overlay_addresses_work_end_to_end():
    """Yggdrasil addresses are IPv6: c=IN IP6, candidates and checks on ::1 here."""
    pa = ice.OverlayPeerConnection(IcePolicy.make(["::1"], ["::1"]))
    pb = ice.OverlayPeerConnection(IcePolicy.make(["::1"], ["::1"]))
    try:
        pb.addTransceiver("video", direction="recvonly")
        await pb.setLocalDescription(await pb.createOffer())
        assert "c=IN IP6 ::1" in pb.localDescription.sdp
        await pa.setRemoteDescription(pb.localDescription)
        pa.addTrack(VideoStreamTrack())
        await pa.setLocalDescription(await pa.createAnswer())
        await pb.setRemoteDescription(pa.localDescription)
        for _ in range(100):
            if pa.connectionState == pb.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        assert ice.selected_pair(pb) == ("::1", "::1")
    finally:
        await asyncio.gather(pa.close(), pb.close())


def test_the_ice_internals_check_fails_loudly_and_the_api_refuses(monkeypatch):
    """node/internals.py names every aioice/aiortc internal confine.py hooks; if one
    moves, the per-node IceApi refuses to exist (no call can run unconfined)."""
    from node import internals
    from node.ice import IceApi
    from node.overlay.static import StaticProvider

    assert internals.problems("ice") == []
    provider = StaticProvider(address=A)
    IceApi(provider)  # fine as pinned
    monkeypatch.delattr(aioice.ice.Connection, "request_received")
    internals.ice_problems.cache_clear()
    try:
        assert any("Connection.request_received is gone" in p for p in internals.problems("ice"))
        with pytest.raises(PrivacyError, match="request_received"):
            IceApi(provider)
    finally:
        monkeypatch.undo()
        internals.ice_problems.cache_clear()
    assert internals.ice_problems() == ()


def test_a_peer_connection_refuses_when_the_hook_was_taken_out(monkeypatch):
    """The hook is installed once, at import; if anything puts aiortc's own Connection
    back, no overlay peer connection is built (fail closed) instead of a silent repair."""
    monkeypatch.setattr(aiortc.rtcicetransport, "Connection", aioice.ice.Connection)
    with pytest.raises(PrivacyError, match="overlay-confined"):
        ice.OverlayPeerConnection(IcePolicy.make([A], [B]))
    monkeypatch.undo()
    assert confine.installed()
