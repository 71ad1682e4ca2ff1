"""CallManager between two nodes in one process, on loopback as the overlay (127.0.0.1
and 127.0.0.2): a view call with stats and address-free events, the signed busy reply,
a silent peer ended within the idle timeout with its sockets released."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest

from node.calls import CallError, CallManager
from node.config import Config
from node.ice import ice_connections
from node.links import LinkOpener, ReplayCache
from node.overlay.static import StaticProvider

from .helpers import CountingReceiver, ToyPublisher

CAM, VIEWER = "127.0.0.1", "127.0.0.2"


class Direct:
    """A transport that hands the link straight to the other node's manager."""

    def __init__(self, manager: CallManager):
        self.manager = manager
        self.replies: list[str] = []

    async def request(self, peer, link_text: str, timeout: float) -> str:
        reply = await asyncio.wait_for(self.manager.handle_link(link_text), timeout)
        self.replies.append(reply)
        return reply


def _manager(node, address, publisher, **calls):
    config = Config()
    for k, v in calls.items():
        setattr(config.calls, k, v)
    opener = LinkOpener(node.identity, node.peers, ReplayCache(node.home.replay_db), skew=30)
    return CallManager(
        node.identity,
        config,
        node.peers,
        StaticProvider(address=address),
        publisher,
        opener,
        receiver_factory=CountingReceiver,
    )


@pytest.fixture
def pair(make_node):
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view,call", address=VIEWER)
    viewer.trust(cam, "view,call", address=CAM)
    return cam, viewer


def _sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


def _threads() -> int:
    """Threads other than the event loop's reusable executor pool (asyncio_N)."""
    return sum(not t.name.startswith("asyncio_") for t in threading.enumerate())


async def _until(cond, timeout: float) -> None:
    async def loop():
        while not cond():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), timeout)


async def test_view_call_flows_reports_stats_and_events_without_addresses(pair):
    cam, viewer = pair
    cam_m = _manager(cam, CAM, ToyPublisher())
    view_m = _manager(viewer, VIEWER, None)
    events: list[dict] = []
    cam_m.on_event(events.append)
    view_m.on_event(events.append)
    sockets_before, threads_before = _sockets(), _threads()
    call = await view_m.view(viewer.peers.find("cam"), Direct(cam_m))
    try:
        await _until(lambda: call.receiver.video_frames >= 5 and call.receiver.audio_frames >= 5, 20)
        assert call.selected_pair() == (VIEWER, CAM)
        (served,) = cam_m.active()
        assert served.kind == "view" and served.peer.name == "viewer"
        await _until(lambda: served.stats()["bytes_sent"] > 0 and served.stats()["packets_sent"] > 0, 10)
        # stats are a snapshot the call refreshes every POLL s: frames can come first
        await _until(lambda: call.stats()["bytes_received"] > 0, 10)
        # the answer travelled as a signed link bound to the request
        assert call.state == "connected"
    finally:
        await view_m.close()
        await cam_m.close()
    assert cam_m.active() == [] and view_m.active() == []
    kinds = [e["event"] for e in events]
    assert kinds.count("call-started") == 2 and kinds.count("call-ended") == 2
    text = json.dumps(events)
    assert CAM not in text and VIEWER not in text and "127.0.0" not in text
    assert _sockets() <= sockets_before  # every call socket closed
    await _until(lambda: _threads() <= threads_before, 10)  # decoder threads joined


async def test_busy_reply_when_max_calls_is_reached(pair, make_node):
    cam, viewer = pair
    other = make_node("other")
    cam.trust(other, "view", address="127.0.0.3")
    other.trust(cam, "view", address=CAM)
    cam_m = _manager(cam, CAM, ToyPublisher(), max_calls=1)
    view_m = _manager(viewer, VIEWER, None)
    other_m = _manager(other, "127.0.0.3", None)
    first = await view_m.view(viewer.peers.find("cam"), Direct(cam_m))
    transport = Direct(cam_m)
    try:
        with pytest.raises(CallError) as err:
            await other_m.view(other.peers.find("cam"), transport)
        assert err.value.code == "busy" and "maximum of 1" in err.value.message
        # the refusal was a signed error link answering that exact request
        (reply,) = transport.replies
        assert reply.startswith("mnode:")
        assert other_m.active() == [] and len(cam_m.active()) == 1
        await _until(lambda: first.receiver.video_frames >= 1, 20)
        await first.end("test-done")
        await _until(lambda: not cam_m.active(), 15)  # the viewer's DTLS close ends it
        # a slot is free again
        again = await other_m.view(other.peers.find("cam"), Direct(cam_m))
        await again.end("test-done")
    finally:
        await asyncio.gather(view_m.close(), other_m.close(), cam_m.close())


async def test_silent_peer_is_ended_within_idle_timeout_and_released(pair):
    cam, viewer = pair
    cam_m = _manager(cam, CAM, ToyPublisher(), idle_timeout=3.0)
    view_m = _manager(viewer, VIEWER, None, idle_timeout=3.0)
    ended: list[dict] = []
    cam_m.on_event(lambda e: ended.append(e) if e["event"] == "call-ended" else None)
    call = await view_m.view(viewer.peers.find("cam"), Direct(cam_m))
    try:
        await _until(lambda: call.receiver.video_frames >= 3, 20)
        (served,) = cam_m.active()
        (cam_conn,) = ice_connections(served.pc)
        assert cam_conn._protocols  # the overlay socket is open
        # The viewer goes silent without a goodbye: its sockets stop, no DTLS close.
        for conn in ice_connections(call.pc):
            for protocol in conn._protocols:
                protocol.transport.close()
        assert await served.wait(15), "a silent peer must end the call (idle_timeout=3)"
        assert served.ended_reason == "peer-silent"
        assert cam_m.active() == []
        assert cam_conn._protocols == [] and served.pc.connectionState == "closed"
        assert served.attachment.detached
        assert ended and ended[0]["reason"] == "peer-silent" and ended[0]["stats"]["bytes_sent"] > 0
        tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith(f"call-{served.id}")]
        assert all(t.done() for t in tasks)
    finally:
        await asyncio.gather(view_m.close(), cam_m.close())


async def test_an_answer_that_would_leak_an_address_is_never_signed(pair, monkeypatch):
    """If gathering ever produced a non-overlay candidate (an aioice change, a bug) and
    the connection's own confinement failed too, the SDP check refuses it before
    make_link: the peer gets a signed 'privacy' error that carries no SDP, and no call
    starts."""
    import node.calls.manager as calls_module
    from node.ice import OverlayConnection

    cam, viewer = pair
    original = OverlayConnection.get_component_candidates

    async def leaky(self, component, addresses, timeout=5):
        found = await original(self, component, addresses, timeout)
        if self.overlay_policy.local[0].exploded == CAM:  # only the camera leaks
            found += await aioice_gather(self, component, ["127.0.0.5"], timeout)
        return found

    from aioice.ice import Connection as AioiceConnection

    aioice_gather = AioiceConnection.get_component_candidates
    monkeypatch.setattr(OverlayConnection, "get_component_candidates", leaky)

    async def no_confinement(self):  # the connection's own layer broken too: the SDP check holds alone
        return None

    monkeypatch.setattr(OverlayConnection, "_confine_local", no_confinement)
    signed: list[tuple[str, str]] = []
    real_make_link = calls_module.make_link

    def spy(identity, kind, to, **kw):
        signed.append((kind, kw.get("sdp", "")))
        return real_make_link(identity, kind, to, **kw)

    monkeypatch.setattr(calls_module, "make_link", spy)
    cam_m = _manager(cam, CAM, ToyPublisher())
    view_m = _manager(viewer, VIEWER, None)
    try:
        with pytest.raises(CallError) as err:
            await view_m.view(viewer.peers.find("cam"), Direct(cam_m))
        assert err.value.code == "privacy"
        cam_signed = [(k, sdp) for k, sdp in signed if k in ("answer", "error")]
        assert cam_signed == [("error", "")]
        assert "127.0.0.5" not in json.dumps(signed)
        assert cam_m.active() == []
    finally:
        await asyncio.gather(view_m.close(), cam_m.close())


async def test_offer_from_an_address_the_node_does_not_resolve_gets_a_clear_error(pair):
    cam, viewer = pair
    cam.trust(viewer, "view", address="127.0.0.9")  # the allowlist says the viewer is elsewhere
    cam_m = _manager(cam, CAM, ToyPublisher())
    view_m = _manager(viewer, VIEWER, None)
    try:
        with pytest.raises(CallError) as err:
            await view_m.view(viewer.peers.find("cam"), Direct(cam_m))
        assert err.value.code == "no-candidate" and "allowlist" in err.value.message
        assert cam_m.active() == [] and view_m.active() == []
    finally:
        await asyncio.gather(view_m.close(), cam_m.close())
