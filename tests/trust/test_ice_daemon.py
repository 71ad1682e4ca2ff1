"""ICE after nomination, through the whole daemon (node.service.Service with real media):
a viewer sets up a real call by file drop, then a third party on the viewer's address
but another port sends STUN checks signed with the ICE password the unsealed answer
shows, one plain and one that would flip the camera's ICE role: neither is answered,
the role stays, and the call goes on."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest
from aioice import stun
from aiortc import RTCSessionDescription

from node.ice import IcePolicy, OverlayPeerConnection, ice_connections
from node.links import LinkOpener, make_link

from .daemon import ADDRESSES, configure, pair, running, wait_for

pytestmark = pytest.mark.timeout(120)

CAM, VIEWER = ADDRESSES["camera"], ADDRESSES["viewer"]


def sdp_value(sdp: str, key: str) -> str:
    m = re.search(rf"^a={key}:(\S+)", sdp, re.MULTILINE)
    assert m, key
    return m.group(1)


def check(camera_ufrag: str, viewer_ufrag: str, camera_pwd: str, role: str, tiebreaker: int) -> bytes:
    msg = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    msg.attributes["USERNAME"] = f"{camera_ufrag}:{viewer_ufrag}"
    msg.attributes["PRIORITY"] = 1
    msg.attributes[role] = tiebreaker
    msg.add_message_integrity(camera_pwd.encode())
    msg.add_fingerprint()
    return bytes(msg)


async def test_late_checks_from_another_port_are_refused_by_the_daemon(make_node):
    camera, viewer = pair(make_node)
    configure(camera, settle=0.05, rescan=0.5)
    pc = OverlayPeerConnection(IcePolicy.make([VIEWER], [CAM]))
    try:
        async with running(camera) as service:
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            link = make_link(viewer.identity, "view-request", camera.node_id, sdp=pc.localDescription.sdp)
            (camera.home.inbox / ".call.tmp").write_text(link.text)
            (camera.home.inbox / ".call.tmp").rename(camera.home.inbox / "call.link")
            await wait_for(lambda: (camera.home.outbox / "call.link").exists(), what="the answer")
            reply = (camera.home.outbox / "call.link").read_text()
            answer = LinkOpener(viewer.identity, viewer.peers).open(reply, expect_offer=link.digest).claims
            assert answer.kind == "answer", answer.err
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
            await wait_for(lambda: pc.connectionState == "connected", what="the call connected")
            [call] = service.manager.active()
            [conn] = ice_connections(call.pc)
            await wait_for(lambda: conn._nominated, what="the camera's pair nominated")
            target = next(iter(conn._nominated.values())).local_addr
            controlling = conn.ice_controlling
            ufrag, pwd = sdp_value(answer.sdp, "ice-ufrag"), sdp_value(answer.sdp, "ice-pwd")
            mine = sdp_value(pc.localDescription.sdp, "ice-ufrag")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((VIEWER, 0))  # the viewer's address, another port
                sock.setblocking(False)
                # a plain check, then one claiming the role the camera has (a role conflict)
                sock.sendto(check(ufrag, mine, pwd, "ICE-CONTROLLING", 2**64 - 1), target)
                await wait_for(lambda: conn.late_checks_refused >= 1, what="the plain check refused")
                role = "ICE-CONTROLLING" if controlling else "ICE-CONTROLLED"
                sock.sendto(check(ufrag, mine, pwd, role, 0 if not controlling else 2**64 - 1), target)
                await wait_for(lambda: conn.late_checks_refused >= 2, what="the role conflict refused")
                await asyncio.sleep(0.2)  # an answer, had there been one, would be here by now
                with pytest.raises(BlockingIOError):
                    sock.recv(2048)
            assert conn.ice_controlling == controlling
            assert pc.connectionState == "connected"
            assert service.manager.active() == [call]
    finally:
        await pc.close()
