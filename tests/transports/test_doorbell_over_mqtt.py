"""The doorbell end to end: two whole daemons (node.service.Service) on a real mosquitto,
loopback as the overlay. A press of the GPIO button — simulated through the fake gpiod
(tests/fakes/gpiod; this kernel has no GPIO at all, so nothing real can be pressed) —
and a cmd/ring from Home Assistant each publish a `ring` event and make the camera call
the peer in `[doorbell] call`, a real viewer node that answers; the ring's snapshot and
a cmd/snapshot are JPEGs at the camera's own resolution."""

from __future__ import annotations

import io
import json
import time

import av
import pytest

from node.config import Config, render_default_config
from node.service import Service

from .broker import Broker
from .test_mqtt import Watcher, wait_for

pytestmark = pytest.mark.timeout(150)

ADDRESSES = {"camera": "127.0.0.1", "door": "127.0.0.2"}


def configure(node, broker: Broker, **sections) -> None:
    config = Config()
    config.node.name = node.name
    config.overlay.provider = "static"
    config.overlay.address = ADDRESSES[node.name]
    config.overlay.cidr = "127.0.0.0/8"
    config.filedrop.enabled = False
    config.mqtt = broker.config_for(node.node_id, home_assistant=node.name == "camera")
    config.media.video = "testsrc"
    config.media.audio = "none"
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(config, name), key, value)
    node.home.config_file.write_text(render_default_config(config))


def jpeg_size(payload: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(payload), format="image2pipe") as c:
        frame = next(c.decode(video=0))
        return frame.width, frame.height


async def test_a_press_and_cmd_ring_ring_snapshot_and_call_the_configured_peer(
    make_node, tmp_path, fake_gpiod
):
    camera, door = make_node("camera"), make_node("door")
    camera.trust(door, "view,call", address=ADDRESSES["door"])
    door.trust(camera, "view,call", address=ADDRESSES["camera"])
    broker = Broker(
        tmp_path / "broker", nodes=[camera, door], controllers=["homeassistant"], home_assistant=True
    )
    broker.start()
    configure(
        camera,
        broker,
        doorbell={"gpio": "GPIO17", "chip": f"{fake_gpiod.dev}/gpiochip4", "call": ["door"], "hold_off": 0.0},
        snapshot={"enabled": True, "min_interval": 0.0},
    )
    configure(door, broker)
    ha = Watcher(broker, "homeassistant")
    cam_service, door_service = Service(camera.home), Service(door.home)
    try:
        assert await ha.connected()
        ha.c.subscribe("media-node/#", qos=1)
        await wait_for(lambda: ha.suback, what="SUBACK")
        await door_service.start()
        await cam_service.start()
        await wait_for(
            lambda: all(t.connected for s in (cam_service, door_service) for t in s.transports),
            what="both daemons on the broker",
        )
        button = cam_service.doorbell.button
        assert button is not None and button.opened.wait(10), "the button's line was not requested"
        events = f"media-node/{camera.node_id}/events"
        ha_events = f"media-node/{camera.node_id}/ha/event"
        snapshots = f"media-node/{camera.node_id}/snapshot"

        # the visitor presses: the contact closes (pulled low), bounces, opens
        now = time.monotonic_ns()
        for level, ms in ((0, 0), (1, 1), (0, 2), (1, 150), (0, 151), (1, 152)):
            fake_gpiod.Board.drive("GPIO17", level, now + ms * 1_000_000)
        await wait_for(lambda: ha.on(ha_events), what="the ring as an HA event")
        rings = [json.loads(m.payload) for m in ha.on(events) if json.loads(m.payload)["event"] == "ring"]
        assert rings[0]["source"] == "button" and rings[0]["calling"] == ["door"], rings
        assert json.loads(ha.on(ha_events)[0].payload) == {
            "event_type": "ring",
            "source": "button",
            "calling": ["door"],
        }
        await wait_for(door_service.manager.active, timeout=60, what="the door called")
        [incoming] = door_service.manager.active()
        assert incoming.kind == "incoming" and incoming.peer.name == "camera"
        await wait_for(lambda: incoming.connected_at is not None, timeout=30, what="media connected")
        [outgoing] = cam_service.manager.active()
        assert outgoing.kind == "outgoing" and outgoing.peer.name == "door"
        await wait_for(lambda: ha.on(snapshots), timeout=30, what="the ring's snapshot")
        info = cam_service.publisher.video.info()
        assert jpeg_size(ha.on(snapshots)[0].payload) == (info.width, info.height)
        assert cam_service.doorbell.doorbell.rings == 1 and button.presses == 1, "one press, one ring"

        # Home Assistant (or a Zigbee button's automation) rings over MQTT
        replies = "media-node/homeassistant/reply/bell"
        ha.publish(f"media-node/{camera.node_id}/cmd/ring", b"ring", response_topic=f"{replies}/1", corr=b"1")
        await wait_for(lambda: ha.on(replies), what="the cmd/ring reply")
        assert json.loads(ha.on(replies)[0].payload) == {"ok": True, "calling": ["door"], "skipped": {}}
        await wait_for(
            lambda: len(door_service.manager.active()) == 2, timeout=60, what="the door called again"
        )
        ha.publish(f"media-node/{camera.node_id}/cmd/snapshot", b"", response_topic=f"{replies}/2", corr=b"2")
        await wait_for(lambda: len(ha.on(replies)) == 2, timeout=30, what="the cmd/snapshot reply")
        reply = json.loads(ha.on(replies)[1].payload)
        assert reply["ok"] and (reply["width"], reply["height"]) == (info.width, info.height), reply
        assert jpeg_size(ha.on(snapshots)[-1].payload) == (info.width, info.height)
        # nothing that left the camera names an address
        text = " ".join(
            m.payload.decode(errors="replace") for m in ha.messages if not m.topic.endswith("/snapshot")
        )
        assert not any(a in text for a in ADDRESSES.values())
    finally:
        await cam_service.stop()
        await door_service.stop()
        ha.close()
        broker.stop()
    assert fake_gpiod.Board.pin("GPIO17").request is None, "the line is released when the node stops"
