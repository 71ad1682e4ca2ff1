"""Review fixes, against a real mosquitto and a real inotify watcher: failure text never
leaves the node over MQTT, a QoS 0 flood is refused as busy while QoS 1 stays lossless,
a forged answer cannot take the place of the real one, and a hung file-drop handler is
cut off with reason `timeout`."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from node.ice import PrivacyError
from node.links import make_link
from node.overlay import OverlayError
from node.transports.filedrop import FileDropWatcher
from node.transports.mqtt import MqttClient, MqttTransport

from .broker import Broker
from .helpers import SDP, Responder, check_answer, view_request
from .test_mqtt import Watcher, wait_for

pytestmark = pytest.mark.timeout(120)

UNDERLAY = "192.168.1.22"


@pytest.fixture
def nodes(make_node):
    viewer, camera, stranger = (make_node(n) for n in ("viewer", "camera", "stranger"))
    camera.trust(viewer, "view,call")
    viewer.trust(camera, "view,call")
    return viewer, camera, stranger


@pytest.fixture
def broker(tmp_path, nodes):
    b = Broker(tmp_path / "broker", nodes=nodes, controllers=["controller"])
    b.start()
    yield b
    b.stop()


async def test_cmd_call_failures_publish_no_exception_text(broker, nodes):
    viewer, camera, _ = nodes
    failures = iter(
        [
            OverlayError(f"peer 'viewer': address {UNDERLAY} is outside the overlay 10.42.0.0/16"),
            PrivacyError(f"the SDP names {UNDERLAY}, which is not on the overlay"),
            RuntimeError(f"connect to {UNDERLAY}:443 failed"),
        ]
    )

    async def on_call(peer, transport):
        raise next(failures)

    ctl = Watcher(broker, "controller")
    assert await ctl.connected()
    replies = "media-node/controller/reply/leak"
    events = f"media-node/{camera.node_id}/events"
    ctl.c.subscribe(replies + "/#", qos=1)
    ctl.c.subscribe(events, qos=1)
    await wait_for(lambda: len(ctl.suback) == 2, what="SUBACKs")
    try:
        async with MqttTransport(
            broker.config_for(camera.node_id),
            camera.identity,
            Responder(camera),
            peers=camera.peers,
            on_call=on_call,
        ):
            for i in range(3):
                ctl.publish(
                    f"media-node/{camera.node_id}/cmd/call",
                    b"viewer",
                    response_topic=f"{replies}/{i}",
                    corr=bytes([i]),
                )
            await wait_for(
                lambda: len(ctl.on(replies)) == 3 and len(ctl.on(events)) == 3,
                what="three replies and three rejected events",
            )
        got = {m.properties.CorrelationData: json.loads(m.payload) for m in ctl.on(replies)}
        assert [got[bytes([i])]["reason"] for i in range(3)] == ["unavailable", "privacy", "handler-error"]
        for m in ctl.on(replies) + ctl.on(events):
            text = m.payload.decode()
            assert UNDERLAY not in text and "10.42." not in text, text
            assert json.loads(text)["message"], text
    finally:
        ctl.close()


async def test_qos0_flood_is_refused_busy_and_qos1_stays_lossless(broker, nodes):
    viewer, camera, _ = nodes
    gate = asyncio.Event()
    responder = Responder(camera)

    async def handler(text):
        await gate.wait()  # every worker stays busy until the flood is over
        return await responder(text)

    sender = Watcher(broker, viewer.node_id)
    ctl = Watcher(broker, "controller")
    assert await sender.connected() and await ctl.connected()
    replies = f"media-node/{viewer.node_id}/reply/flood"
    events = f"media-node/{camera.node_id}/events"
    sender.c.subscribe(replies + "/#", qos=1)
    ctl.c.subscribe(events, qos=1)
    await wait_for(lambda: sender.suback and ctl.suback, what="SUBACKs")
    transport = MqttTransport(
        broker.config_for(camera.node_id), camera.identity, handler, peers=camera.peers, workers=1
    )
    pending: list[asyncio.Task] = []
    try:
        async with transport, MqttClient(broker.config_for(viewer.node_id), viewer.identity) as client:
            # QoS 1 first, more than the queue limit and the broker's in-flight window.
            requests = [view_request(viewer, camera) for _ in range(25)]
            pending = [
                asyncio.create_task(client.request(camera.node_id, r.text, timeout=90)) for r in requests
            ]
            flood = 300
            for i in range(flood):
                sender.publish(
                    f"media-node/{camera.node_id}/inbox", b"x" * 200, response_topic=f"{replies}/{i}", qos=0
                )
            # Which QoS 0 messages find the queue full depends on arrival order; most must.
            await wait_for(
                lambda: transport.counts["rejected"] >= flood // 2,
                timeout=60,
                what="QoS 0 messages refused as busy",
            )
            assert transport._queue.qsize() <= transport.queue_limit + len(requests)
            await wait_for(lambda: len(sender.on(replies)) >= flood // 2, timeout=60, what="busy replies")
            busy = [json.loads(m.payload) for m in sender.on(replies)]
            assert all(r == {"ok": False, "reason": "busy", "message": r["message"]} for r in busy), busy[:3]
            await wait_for(
                lambda: any(json.loads(m.payload).get("reason") == "busy" for m in ctl.on(events)),
                timeout=30,
                what="a busy rejected event",
            )
            counted = sum(
                json.loads(m.payload).get("count", 0)
                for m in ctl.on(events)
                if json.loads(m.payload).get("reason") == "busy"
            )
            assert 0 < counted <= transport.counts["rejected"]
            gate.set()
            for request, reply in zip(requests, await asyncio.gather(*pending), strict=False):
                check_answer(viewer, request, reply)  # every QoS 1 link answered: none lost
    finally:
        gate.set()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        sender.close()
        ctl.close()
        responder.close()


async def test_a_forged_answer_does_not_use_up_the_pending_request(broker, nodes):
    """Answers that arrive on the inbox resolve a pending request only once they verify:
    the stranger's answer naming our offer is refused, the real one still gets through."""
    viewer, camera, stranger = nodes
    responder = Responder(camera)
    async with (
        MqttTransport(
            broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers
        ) as transport,
        MqttClient(broker.config_for(stranger.node_id), stranger.identity) as forger,
        MqttClient(broker.config_for(viewer.node_id), viewer.identity) as real,
    ):
        offer = make_link(camera.identity, "offer", viewer.node_id, sdp=SDP)
        request = asyncio.create_task(transport.request(viewer.node_id, offer.text, timeout=60))
        await wait_for(lambda: transport.client._pending, what="the pending request")
        inbox = transport.topic("inbox")
        forged = make_link(stranger.identity, "answer", camera.node_id, sdp=SDP, ofh=offer.digest)
        forger.publish(inbox, forged.text, qos=1)
        await wait_for(lambda: transport.counts["rejected"] == 1, what="the forgery refused")
        assert not request.done()
        answer = make_link(viewer.identity, "answer", camera.node_id, sdp=SDP, ofh=offer.digest)
        real.publish(inbox, answer.text, qos=1)
        assert await asyncio.wait_for(request, 30) == answer.text
    responder.close()


async def test_a_hung_filedrop_handler_times_out_and_frees_its_worker(make_node):
    viewer, camera = make_node("viewer"), make_node("camera")
    camera.trust(viewer, "view")
    viewer.trust(camera, "view")
    responder = Responder(camera)
    calls = []
    events = []

    async def handler(text):
        calls.append(text)
        if len(calls) == 1:
            await asyncio.sleep(3600)  # a call set-up that never finishes
        return await responder(text)

    async with FileDropWatcher(
        camera.home, handler, settle=0.05, concurrency=1, handle_timeout=1.0, on_event=events.append
    ):
        (camera.home.inbox / "hung.link").write_text(view_request(viewer, camera).text)
        await wait_for(lambda: (camera.home.rejected / "hung.link.reason.json").exists(), what="the timeout")
        reason = json.loads((camera.home.rejected / "hung.link.reason.json").read_text())
        assert reason["reason"] == "timeout", reason
        request = view_request(viewer, camera)
        tmp = camera.home.inbox / ".next.tmp"
        tmp.write_text(request.text)
        os.rename(tmp, camera.home.inbox / "next.link")
        await wait_for(lambda: (camera.home.done / "next.link").exists(), what="the next file handled")
        check_answer(viewer, request, (camera.home.outbox / "next.link").read_text())
    assert [e["reason"] for e in events] == ["timeout"]
    responder.close()
