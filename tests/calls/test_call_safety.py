"""What a peer may make the node do, and what the node leaves behind: a view-request
that asks to send is refused (the camera never receives from a viewer), a two-way call
without a consumer does not receive, close() ends calls still being set up, event
callbacks are kept alive, and the demo stops its service when starting fails."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from aiortc import VideoStreamTrack

from node.calls import CallManager, serve
from node.config import Config
from node.ice import IcePolicy, OverlayPeerConnection
from node.links import LinkOpener, ReplayCache, make_link
from node.overlay.static import StaticProvider

from .helpers import CountingReceiver, ToyPublisher

CAM, VIEWER = "127.0.0.1", "127.0.0.2"
DIRECTIONS = ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")


def _manager(node, provider, publisher, receiver_factory=CountingReceiver) -> CallManager:
    opener = LinkOpener(node.identity, node.peers, ReplayCache(node.home.replay_db), skew=30)
    return CallManager(
        node.identity, Config(), node.peers, provider, publisher, opener, receiver_factory=receiver_factory
    )


def _reply(viewer, text: str, offer_digest: str):
    return LinkOpener(viewer.identity, viewer.peers, None, skew=30).open(text, expect_offer=offer_digest)


async def _offer_from_viewer(viewer, cam, kind: str, *, send_video: bool):
    """A real offer made by hand: recvonly audio, and video recvonly or sendrecv."""
    pc = OverlayPeerConnection(IcePolicy.make([VIEWER], [CAM]))
    pc.addTransceiver("audio", direction="recvonly")
    if send_video:
        pc.addTrack(VideoStreamTrack())
    else:
        pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    link = make_link(viewer.identity, kind, cam.node_id, sdp=pc.localDescription.sdp, addr=VIEWER)
    return pc, link


async def test_a_view_request_that_asks_to_send_is_refused_with_a_signed_error(make_node):
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view", address=VIEWER)  # view only: no 'call'
    viewer.trust(cam, "view", address=CAM)
    publisher = ToyPublisher()
    cam_m = _manager(cam, StaticProvider(address=CAM), publisher)
    pc, link = await _offer_from_viewer(viewer, cam, "view-request", send_video=True)
    try:
        reply = _reply(viewer, await asyncio.wait_for(cam_m.handle_link(link.text), 30), link.digest)
        assert reply.claims.kind == "error"
        assert reply.claims.err["code"] == "bad-offer"
        assert CAM not in reply.claims.err["message"] and VIEWER not in reply.claims.err["message"]
        assert cam_m.active() == []
        assert publisher.attachments == []  # refused before any media was attached
    finally:
        await cam_m.close()
        await pc.close()


async def test_a_recvonly_view_request_is_answered_send_only(make_node):
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view", address=VIEWER)
    viewer.trust(cam, "view", address=CAM)
    cam_m = _manager(cam, StaticProvider(address=CAM), ToyPublisher())
    pc, link = await _offer_from_viewer(viewer, cam, "view-request", send_video=False)
    try:
        reply = _reply(viewer, await asyncio.wait_for(cam_m.handle_link(link.text), 30), link.digest)
        assert reply.claims.kind == "answer"
        directions = [line for line in reply.claims.sdp.splitlines() if line in DIRECTIONS]
        assert directions == ["a=sendonly", "a=sendonly"]
        (call,) = cam_m.active()
        assert all(t.direction == "sendonly" for t in call.pc.getTransceivers())
    finally:
        await cam_m.close()
        await pc.close()


async def test_a_two_way_offer_without_a_consumer_is_answered_send_only(make_node):
    """Nothing would read the peer's media: the node must not ask for it (else aiortc
    decodes it into a queue nobody drains)."""
    cam, caller = make_node("cam"), make_node("viewer")
    cam.trust(caller, "view,call", address=VIEWER)
    caller.trust(cam, "view,call", address=CAM)
    cam_m = _manager(cam, StaticProvider(address=CAM), ToyPublisher(), receiver_factory=lambda pc: None)
    pc, link = await _offer_from_viewer(caller, cam, "offer", send_video=True)
    try:
        reply = _reply(caller, await asyncio.wait_for(cam_m.handle_link(link.text), 30), link.digest)
        assert reply.claims.kind == "answer"
        directions = [line for line in reply.claims.sdp.splitlines() if line in DIRECTIONS]
        assert "a=sendrecv" not in directions and "a=recvonly" not in directions
    finally:
        await cam_m.close()
        await pc.close()


async def test_a_two_way_offer_with_a_consumer_stays_two_way(make_node):
    cam, caller = make_node("cam"), make_node("viewer")
    cam.trust(caller, "view,call", address=VIEWER)
    caller.trust(cam, "view,call", address=CAM)
    cam_m = _manager(cam, StaticProvider(address=CAM), ToyPublisher())
    pc, link = await _offer_from_viewer(caller, cam, "offer", send_video=True)
    try:
        reply = _reply(caller, await asyncio.wait_for(cam_m.handle_link(link.text), 30), link.digest)
        assert reply.claims.kind == "answer"
        directions = [line for line in reply.claims.sdp.splitlines() if line in DIRECTIONS]
        assert directions == ["a=sendonly", "a=sendrecv"]  # audio: the caller offered recvonly
        (call,) = cam_m.active()
        assert isinstance(call.receiver, CountingReceiver)
    finally:
        await cam_m.close()
        await pc.close()


async def test_a_view_request_with_a_line_hidden_behind_a_bare_cr_is_refused(make_node):
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view", address=VIEWER)
    viewer.trust(cam, "view", address=CAM)
    cam_m = _manager(cam, StaticProvider(address=CAM), ToyPublisher())
    pc = OverlayPeerConnection(IcePolicy.make([VIEWER], [CAM]))
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp.replace(
            "a=end-of-candidates",
            "a=end-of-candidates\ra=candidate:9 1 udp 2130706431 10.9.8.7 4000 typ host",
            1,
        )
        link = make_link(viewer.identity, "view-request", cam.node_id, sdp=sdp, addr=VIEWER)
        reply = _reply(viewer, await asyncio.wait_for(cam_m.handle_link(link.text), 30), link.digest)
        assert reply.claims.kind == "error"
        assert reply.claims.err["code"] == "bad-offer"
        assert cam_m.active() == []
    finally:
        await cam_m.close()
        await pc.close()


class SlowProvider(StaticProvider):
    """Resolving takes a while: SIGTERM arrives while a handshake is being set up."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.resolving = asyncio.Event()

    async def resolve(self, peer):
        self.resolving.set()
        await asyncio.sleep(0.5)
        return await super().resolve(peer)


async def test_close_ends_a_call_that_is_still_being_set_up(make_node):
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view", address=VIEWER)
    viewer.trust(cam, "view", address=CAM)
    provider = SlowProvider(address=CAM)
    cam_m = _manager(cam, provider, ToyPublisher())
    pc, link = await _offer_from_viewer(viewer, cam, "view-request", send_video=False)
    task = asyncio.create_task(cam_m.handle_link(link.text))
    try:
        await asyncio.wait_for(provider.resolving.wait(), 10)
        await asyncio.wait_for(cam_m.close(), 30)
        reply = _reply(viewer, await asyncio.wait_for(task, 30), link.digest)
        assert reply.claims.kind == "error" and reply.claims.err["code"] == "stopping"
        assert cam_m.active() == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for call in cam_m.active():
            await call.end("cleanup")
        await pc.close()


async def test_a_call_set_up_after_close_is_ended_at_once(make_node, monkeypatch):
    """Belt and braces: even a setup close() did not see never registers a live call."""
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view", address=VIEWER)
    viewer.trust(cam, "view", address=CAM)
    cam_m = _manager(cam, StaticProvider(address=CAM), ToyPublisher())
    pc, link = await _offer_from_viewer(viewer, cam, "view-request", send_video=False)
    original = serve.answer

    async def close_midway(self, opened, *args):
        self._setups.clear()  # as if close() could not see this setup
        await self.close()
        return await original(self, opened, *args)

    monkeypatch.setattr(serve, "answer", close_midway)
    try:
        reply = _reply(viewer, await asyncio.wait_for(cam_m.handle_link(link.text), 30), link.digest)
        assert reply.claims.kind == "error" and reply.claims.err["code"] == "stopping"
        assert cam_m.active() == []
    finally:
        for call in cam_m.active():
            await call.end("cleanup")
        await pc.close()


async def test_coroutine_event_callbacks_are_kept_until_done(make_node):
    node = make_node("cam")
    manager = _manager(node, StaticProvider(address=CAM), None)
    seen: list[weakref.ref] = []

    async def callback(event: dict) -> None:
        seen.append(weakref.ref(asyncio.current_task()))
        # Awaits a future nothing else references: only the manager keeps this task.
        await asyncio.get_running_loop().create_future()

    manager.on_event(callback)
    manager.events.emit({"event": "test"})
    await asyncio.sleep(0)
    assert len(seen) == 1
    gc.collect()
    task = seen[0]()
    assert task is not None and not task.done(), "the callback's task was garbage-collected"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not manager.events.pending  # forgotten once done


async def test_demo_stops_the_service_when_its_start_fails(tmp_path, monkeypatch):
    from node import demo
    from node.errors import NodeError
    from node.service import Service

    stopped: list[bool] = []

    async def failing_start(self):
        raise NodeError("the media sources did not start")

    original_stop = Service.stop

    async def spy_stop(self):
        stopped.append(True)
        await original_stop(self)

    monkeypatch.setattr(Service, "start", failing_start)
    monkeypatch.setattr(Service, "stop", spy_stop)
    with pytest.raises(NodeError):
        await demo.run_demo(1.0, tmp_path / "demo")
    assert stopped == [True]
