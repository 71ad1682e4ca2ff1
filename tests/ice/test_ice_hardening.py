"""Each layer of the overlay-only rule holds on its own: SDP is read line by line exactly
as aiortc reads it (no line hides behind a bare CR or another line break), and an
OverlayConnection keeps no socket off the overlay, whatever produced it."""

from __future__ import annotations

import aioice.ice
import pytest
from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from node import ice
from node.ice import (
    IcePolicy,
    MalformedSdpError,
    OverlayConnection,
    PrivacyError,
    check_outgoing_sdp,
    confine,
    filter_incoming_sdp,
    sdp_addresses,
)
from node.ice.policy import literal_ip

A, B = "127.0.0.1", "127.0.0.2"
FOREIGN = "127.0.0.5"  # a loopback address outside every policy here: bindable, never allowed

# Every separator str.splitlines() (aiortc's parser) breaks on, other than CRLF/LF.
HIDING = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
HIDDEN = "a=candidate:9 1 udp 2130706431 10.9.8.7 4000 typ host"


async def _offer_sdp(policy: IcePolicy) -> str:
    pc = ice.OverlayPeerConnection(policy)
    try:
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


def _hide(sdp: str, sep: str) -> str:
    return sdp.replace("a=end-of-candidates", f"a=end-of-candidates{sep}{HIDDEN}", 1)


@pytest.mark.parametrize("sep", HIDING, ids=[f"{ord(s):#06x}" for s in HIDING])
async def test_a_line_hidden_behind_another_line_break_is_refused_both_ways(sep):
    sdp = _hide(await _offer_sdp(IcePolicy.make([A], [B])), sep)
    # aiortc would see the hidden candidate: that is what makes this an attack
    assert "10.9.8.7" in [c.ip for m in SessionDescription.parse(sdp).media for c in m.ice_candidates]
    with pytest.raises(MalformedSdpError):
        filter_incoming_sdp(sdp, IcePolicy.make([B], [A]))
    with pytest.raises(MalformedSdpError):
        check_outgoing_sdp(sdp, IcePolicy.make([A], [B]))
    with pytest.raises(MalformedSdpError):
        sdp_addresses(sdp)


@pytest.mark.parametrize("bad", ["\x00", "\t", "\x7f", "\xe9"])
async def test_control_and_non_ascii_characters_are_refused(bad):
    sdp = (await _offer_sdp(IcePolicy.make([A], [B]))).replace("s=-", f"s=-{bad}", 1)
    with pytest.raises(PrivacyError):
        filter_incoming_sdp(sdp, IcePolicy.make([B], [A]))
    with pytest.raises(PrivacyError):
        check_outgoing_sdp(sdp, IcePolicy.make([A], [B]))


async def test_crlf_and_lf_line_ends_are_both_fine():
    sdp = await _offer_sdp(IcePolicy.make([A], [B]))
    check_outgoing_sdp(sdp, IcePolicy.make([A], [B]))
    check_outgoing_sdp(sdp.replace("\r\n", "\n"), IcePolicy.make([A], [B]))
    assert sdp_addresses(sdp.replace("\r\n", "\n"))["candidate"] == [A]


async def test_a_hidden_candidate_never_reaches_aioice_through_set_remote_description(monkeypatch):
    reached: list[str] = []
    original = aioice.ice.Connection._add_remote_candidate

    def spy(self, candidate, host):
        reached.append(candidate.host)
        return original(self, candidate, host)

    monkeypatch.setattr(aioice.ice.Connection, "_add_remote_candidate", spy)
    sdp = _hide(await _offer_sdp(IcePolicy.make([A], [B])), "\r")
    pc = ice.OverlayPeerConnection(IcePolicy.make([B], [A]))
    try:
        with pytest.raises(PrivacyError):
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    finally:
        await pc.close()
    assert "10.9.8.7" not in reached


def _connection(policy: IcePolicy) -> OverlayConnection:
    token = confine._ACTIVE_POLICY.set(policy)
    try:
        return OverlayConnection(ice_controlling=True, components=1)
    finally:
        confine._ACTIVE_POLICY.reset(token)


async def _assert_confined(conn: OverlayConnection, allowed: str) -> None:
    assert [c.host for c in conn.local_candidates] == [allowed]
    assert [p.local_candidate.host for p in conn._protocols] == [allowed]
    await conn.close()


async def test_a_socket_off_the_overlay_is_closed_even_if_aioice_binds_one(monkeypatch):
    """aioice's own gathering binds an extra address (a future aioice, a bug): the
    connection drops and closes it, so no check is ever sent from it."""
    base = aioice.ice.Connection.get_component_candidates
    extra_transports = []

    async def binds_more(self, component, addresses, timeout=5):
        found = await base(self, component, [FOREIGN, *addresses], timeout)
        extra_transports.extend(p.transport for p in self._protocols if p.local_candidate.host == FOREIGN)
        return found

    monkeypatch.setattr(aioice.ice.Connection, "get_component_candidates", binds_more)
    conn = _connection(IcePolicy.make([A], [B]))
    await conn.gather_candidates()
    assert extra_transports, "the experiment did not bind the foreign address"
    assert all(t.is_closing() for t in extra_transports)
    await _assert_confined(conn, A)


async def test_gathering_drops_foreign_sockets_whatever_produced_them(monkeypatch):
    """Even with OverlayConnection's own candidate step replaced, gather_candidates
    confines what the connection holds (the reviewer's experiment, t/test_leak_sends)."""
    base = aioice.ice.Connection.get_component_candidates

    async def leaky(self, component, addresses, timeout=5):
        return await base(self, component, [FOREIGN, A], timeout)

    monkeypatch.setattr(OverlayConnection, "get_component_candidates", leaky)
    conn = _connection(IcePolicy.make([A], [B]))
    await conn.gather_candidates()
    await _assert_confined(conn, A)


def test_aioice_internals_the_confinement_relies_on():
    conn = aioice.ice.Connection(ice_controlling=True)
    assert isinstance(conn._protocols, list) and isinstance(conn._local_candidates, list)
    assert isinstance(conn._check_list, list)
    assert "protocol" in aioice.ice.CandidatePair.__init__.__code__.co_varnames
    # checks are only ever paired with (so sent from) the connection's own sockets
    assert "_protocols" in aioice.ice.Connection._pair_remote_candidate.__code__.co_names


def test_bracketed_or_zoned_addresses_are_not_addresses():
    assert literal_ip("[127.0.0.1]") is None and literal_ip("fe80::1%eth0") is None
    assert literal_ip("x.local") is None and str(literal_ip("127.0.0.1")) == "127.0.0.1"
