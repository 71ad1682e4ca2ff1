"""After a pair is nominated, a STUN check from the peer's address on another port, or
one that would flip this node's ICE role, is refused (real aioice connections on
loopback; the ICE password is what any unsealed link shows)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aioice import stun

from node.ice import IcePolicy, OverlayConnection, confine

A, B = "127.0.0.1", "127.0.0.2"
pytestmark = pytest.mark.timeout(60)


def _connection(policy: IcePolicy, controlling: bool) -> OverlayConnection:
    token = confine._ACTIVE_POLICY.set(policy)
    try:
        return OverlayConnection(ice_controlling=controlling, components=1)
    finally:
        confine._ACTIVE_POLICY.reset(token)


async def _connected_pair() -> tuple[OverlayConnection, OverlayConnection]:
    a = _connection(IcePolicy.make([A], [B]), True)
    b = _connection(IcePolicy.make([B], [A]), False)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for me, other in ((a, b), (b, a)):
        for c in other.local_candidates:
            await me.add_remote_candidate(c)
        await me.add_remote_candidate(None)
        me.remote_username, me.remote_password = other.local_username, other.local_password
    await asyncio.wait_for(asyncio.gather(a.connect(), b.connect()), 20)
    return a, b


def _check(a: OverlayConnection, b: OverlayConnection, *, role: str) -> bytes:
    """A valid check to `a` (its credentials, as an unsealed link shows them), claiming
    `role` with the largest tie-breaker: aioice would give in and switch its role."""
    msg = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    msg.attributes["USERNAME"] = f"{a.local_username}:{b.local_username}"
    msg.attributes["PRIORITY"] = 1
    msg.attributes[role] = 2**64 - 1
    msg.add_message_integrity(a.local_password.encode())
    msg.add_fingerprint()
    return bytes(msg)


async def _outcome(a: OverlayConnection, sock: socket.socket | None = None) -> str:
    """Wait until `a` refused the check, changed its role, or `sock` got an answer."""
    for _ in range(200):
        if getattr(a, "late_checks_refused", 0):
            return "refused"
        if not a.ice_controlling:
            return "role flipped"
        if sock is not None:
            try:
                sock.recv(2048)
                return "answered"
            except BlockingIOError:
                pass
        await asyncio.sleep(0.01)
    return "nothing"


async def test_a_check_from_another_port_after_nomination_is_refused():
    a, b = await _connected_pair()
    try:
        target = a._nominated[1].local_addr
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((B, 0))  # the peer's address, another port
            sock.setblocking(False)
            sock.sendto(_check(a, b, role="ICE-CONTROLLING"), target)
            assert await _outcome(a, sock) == "refused"
        assert a.ice_controlling and b.ice_controlling is False
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_a_role_conflict_after_nomination_is_refused_even_from_the_pair():
    a, b = await _connected_pair()
    try:
        pair = b._nominated[1]  # from the nominated remote address and port itself
        pair.protocol.transport.sendto(_check(a, b, role="ICE-CONTROLLING"), pair.remote_addr)
        assert await _outcome(a) == "refused"
        assert a.ice_controlling
        assert a.checks_received > 0  # the pair's own checks still count (consent)
    finally:
        await asyncio.gather(a.close(), b.close())
