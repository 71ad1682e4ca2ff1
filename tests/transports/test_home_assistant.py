"""Home Assistant discovery against a real mosquitto (TLS, the role's ACL with
home_assistant on): every payload checked against HA's documented schema per platform,
origin and device present, unique ids stable across restarts, HA's birth message makes
the node announce again, node events become HA events, the broker's ACL for what this
adds (HA's birth, cmd/ring and cmd/snapshot, snapshots for controllers only)."""

from __future__ import annotations

import io
import json

import av
import pytest

from node import __version__
from node.config import DoorbellSection
from node.diagnostics import Diagnostics, Throttling
from node.doorbell import Doorbell
from node.media.fanout import Fanout
from node.media.snapshot import Snapshotter
from node.media.testsrc import TestPatternSource
from node.transports.homeassistant import DeviceInfo
from node.transports.mqtt import MqttTransport
from node.transports.mqtt.server import NodeParts

from .broker import Broker
from .ha_schema import problems
from .helpers import Responder
from .test_mqtt import Watcher, wait_for

pytestmark = pytest.mark.timeout(120)

DEVICE = DeviceInfo(
    "front door", "Raspberry Pi 4 Model B / Pi 400 (BCM2711)", "pi4", "Raspberry Pi 4 Model B Rev 1.5"
)


@pytest.fixture
def nodes(make_node):
    viewer, camera, stranger, limited = (make_node(n) for n in ("viewer", "camera", "stranger", "limited"))
    camera.trust(viewer, "view,call")
    camera.trust(limited, "call")
    camera.trust(stranger, "view")
    return viewer, camera, stranger, limited


@pytest.fixture
def broker(tmp_path, nodes):
    b = Broker(tmp_path / "broker", nodes=nodes, controllers=["homeassistant"], home_assistant=True)
    b.start()
    yield b
    b.stop()


@pytest.fixture
async def fanout():
    f = Fanout(TestPatternSource(320, 240, 30, gop=15, seconds=1.0))
    await f.start()
    yield f
    await f.stop()


def diagnostics() -> Diagnostics:
    return Diagnostics(
        source_state=lambda: "ok", viewers=lambda: 0, bitrate=lambda: 1_500_000, throttling=Throttling(None)
    )


def parts(fanout=None, **kw) -> NodeParts:
    return NodeParts(
        doorbell=Doorbell(DoorbellSection(hold_off=0), None),
        snapshots=Snapshotter(fanout, min_interval=0) if fanout is not None else None,
        diagnostics=diagnostics(),
        device=DEVICE,
        **kw,
    )


def transport(broker, camera, node_parts, on_call=None) -> MqttTransport:
    config = broker.config_for(camera.node_id, home_assistant=True)
    return MqttTransport(
        config,
        camera.identity,
        Responder(camera),
        peers=camera.peers,
        name="front door",
        on_call=on_call,
        parts=node_parts,
    )


async def home_assistant(broker) -> Watcher:
    ha = Watcher(broker, "homeassistant")
    assert await ha.connected()
    ha.c.subscribe("homeassistant/#", qos=1)
    ha.c.subscribe("media-node/#", qos=1)
    await wait_for(lambda: len(ha.suback) == 2, what="SUBACKs")
    assert not any(rc.is_failure for rc in ha.suback)
    return ha


def configs(ha: Watcher) -> dict[str, dict]:
    return {
        m.topic: json.loads(m.payload)
        for m in ha.on("homeassistant/")
        if m.payload and m.topic.endswith("/config")
    }


def test_the_schema_check_catches_what_ha_would_refuse():
    """The checker itself must be able to fail."""
    good = {
        "name": "x",
        "unique_id": "u",
        "state_topic": "t",
        "device": {"identifiers": ["i"]},
        "origin": {"name": "media-node"},
    }
    assert problems("sensor", good) == []
    assert problems("sensor", {**good, "state_topik": "t"})  # typo: HA drops it silently
    assert problems("sensor", {k: v for k, v in good.items() if k != "state_topic"})
    assert problems("sensor", {**good, "origin": {"sw_version": "1"}})
    assert problems("sensor", {**good, "device": {"name": "no id"}})
    assert problems(
        "sensor", {**good, "options": ["a"], "device_class": "enum", "state_class": "measurement"}
    )
    assert problems("event", {**good, "event_types": []})
    assert problems("image", {**good, "image_topic": "a", "url_topic": "b"})
    assert problems("sensor", {**good, "entity_category": "config"})


async def test_every_payload_follows_the_schema_and_ids_survive_a_restart(broker, nodes, fanout):
    _, camera, _, _ = nodes
    ha = await home_assistant(broker)
    # online, active calls, ring, doorbell event, 6 health, image + its button, 2 call buttons
    expected = 14
    async with transport(broker, camera, parts(fanout)):
        await wait_for(lambda: len(configs(ha)) == expected, what="the discovery configs")
        first = configs(ha)
    prefix = f"homeassistant/{{}}/{camera.node_id}/"
    by_component = {}
    for topic, payload in first.items():
        component = topic.split("/")[1]
        assert topic.startswith(prefix.format(component)) and topic.endswith("/config"), topic
        assert problems(component, payload) == [], (topic, problems(component, payload))
        by_component.setdefault(component, set()).add(topic.split("/")[3])
        assert payload["origin"] == {
            "name": "media-node",
            "sw_version": __version__,
            "support_url": "https://github.com/media-node/media-node",
        }
        assert payload["device"] == {
            "identifiers": [f"media-node-{camera.node_id}"],
            "name": "front door",
            "manufacturer": "media-node",
            "model": DEVICE.model,
            "model_id": "pi4",
            "hw_version": DEVICE.hw_version,
            "sw_version": __version__,
        }
        assert "configuration_url" not in payload["device"], "the node serves no page"
    assert by_component == {
        "button": {"ring", "take_snapshot", "call_viewer", "call_limited"},
        "binary_sensor": {"online", "throttled"},
        "sensor": {"active_calls", "source", "viewers", "bitrate", "soc_temperature", "uptime"},
        "event": {"doorbell"},
        "image": {"snapshot"},
    }
    assert len(first) == expected
    diagnostic = {t.split("/")[3] for t, p in first.items() if p.get("entity_category") == "diagnostic"}
    assert diagnostic == {"online", "throttled", "source", "viewers", "bitrate", "soc_temperature", "uptime"}
    event = first[f"homeassistant/event/{camera.node_id}/doorbell/config"]
    assert event["event_types"] == [
        "call_started",
        "call_connected",
        "call_ended",
        "rejected",
        "ring",
        "viewer_joined",
        "viewer_left",
    ]
    image = first[f"homeassistant/image/{camera.node_id}/snapshot/config"]
    assert (
        image["image_topic"] == f"media-node/{camera.node_id}/snapshot"
        and image["content_type"] == "image/jpeg"
    )
    # the health topic the diagnostics read from is there, retained, numbers and words only
    await wait_for(lambda: ha.on(f"media-node/{camera.node_id}/health"), what="health")
    health = json.loads(ha.on(f"media-node/{camera.node_id}/health")[-1].payload)
    assert health["source"] == "ok" and health["bitrate"] == 1_500_000 and health["throttling"] == "unknown"
    ha.messages.clear()
    async with transport(broker, camera, parts(fanout)):  # a restart: the same entities
        await wait_for(lambda: len(configs(ha)) == expected, what="the configs again")
        again = configs(ha)
    assert {t: p["unique_id"] for t, p in again.items()} == {t: p["unique_id"] for t, p in first.items()}
    assert len({p["unique_id"] for p in first.values()}) == expected
    ha.close()


async def test_home_assistants_birth_message_makes_the_node_announce_again(broker, nodes):
    _, camera, _, _ = nodes
    ha = await home_assistant(broker)
    async with transport(broker, camera, parts()) as t:
        await wait_for(lambda: len(configs(ha)) == 12, what="the discovery configs")
        assert t.home_assistant.announcements == 1
        ha.messages.clear()
        ha.publish("homeassistant/status", b"offline")  # HA going away changes nothing
        ha.publish("homeassistant/status", b"online", qos=1)  # HA's birth message
        await wait_for(lambda: len(configs(ha)) == 12, what="every config announced again")
        await wait_for(lambda: ha.on(f"media-node/{camera.node_id}/health"), what="health again")
        assert ha.on(f"media-node/{camera.node_id}/status"), "the states come again too"
        assert t.home_assistant.announcements == 2
    ha.close()


async def test_buttons_press_and_follow_the_allowlist(broker, nodes):
    _, camera, stranger, _ = nodes
    calls = []

    async def on_call(peer, transport):
        calls.append(peer.name)

    ha = await home_assistant(broker)
    disc = f"homeassistant/button/{camera.node_id}"
    async with transport(broker, camera, parts(), on_call=on_call) as t:
        await wait_for(lambda: len(configs(ha)) == 12, what="the configs")
        button = configs(ha)[f"{disc}/call_viewer/config"]
        assert button["payload_press"] == "viewer"
        assert button["command_topic"] == f"media-node/{camera.node_id}/cmd/call"
        ha.publish(button["command_topic"], button["payload_press"])  # what HA does on a press
        await wait_for(lambda: calls == ["viewer"], what="the call")
        camera.trust(stranger, "view,call")  # a peer added while the node runs
        t.home_assistant.refresh_if_changed()
        await wait_for(lambda: f"{disc}/call_stranger/config" in configs(ha), what="its button")
    camera.peers.remove("limited")  # left the allowlist: its button goes at the next start
    ha.messages.clear()
    async with transport(broker, camera, parts(), on_call=on_call):
        await wait_for(
            lambda: any(m.topic == f"{disc}/call_limited/config" and not m.payload for m in ha.messages),
            what="the stale button removed",
        )
    ha.close()


async def test_node_events_become_ha_events_with_names_only(broker, nodes):
    viewer, camera, _, _ = nodes
    ha = await home_assistant(broker)
    async with transport(broker, camera, parts()) as t:
        await wait_for(lambda: len(configs(ha)) == 12, what="the configs")
        call = {
            "call": "c1",
            "kind": "view",
            "peer": "viewer",
            "peer_id": viewer.node_id,
            "state": "connecting",
        }
        for event in (
            {"event": "call-started", **call},
            {"event": "call-connected", **call, "state": "connected"},
            {"event": "call-ended", **call, "reason": "connection-closed", "stats": {"bytes_sent": 9}},
            {"event": "ring", "source": "button", "calling": ["viewer"]},
            {"event": "rejected", "reason": "replayed", "remote_address": "192.0.2.7"},
        ):
            t.publish_event(event)
        topic = f"media-node/{camera.node_id}/ha/event"
        await wait_for(lambda: len(ha.on(topic)) == 7, what="the HA events")
        got = [json.loads(m.payload) for m in ha.on(topic)]
        assert got == [
            {"event_type": "call_started", "peer": "viewer", "kind": "view"},
            {"event_type": "call_connected", "peer": "viewer", "kind": "view"},
            {"event_type": "viewer_joined", "peer": "viewer"},
            {"event_type": "call_ended", "peer": "viewer", "kind": "view", "reason": "connection-closed"},
            {"event_type": "viewer_left", "peer": "viewer"},
            {"event_type": "ring", "source": "button", "calling": ["viewer"]},
            {"event_type": "rejected", "reason": "replayed"},
        ]
        assert not any(m.retain for m in ha.on(topic)), "HA ignores retained events"
        # the node's own event names stay as they were
        events = [json.loads(m.payload)["event"] for m in ha.on(f"media-node/{camera.node_id}/events")]
        assert events == ["call-started", "call-connected", "call-ended", "ring", "rejected"]
        text = " ".join(m.payload.decode() for m in ha.on(topic))
        assert viewer.node_id not in text and "192.0.2.7" not in text
    ha.close()


async def test_cmd_snapshot_and_cmd_ring(broker, nodes, fanout):
    """A controller (HA) asks for a snapshot: the JPEG decodes at the source's size; with
    snapshots off the request is refused with a reason; cmd/ring rings."""
    _, camera, _, _ = nodes
    ha = await home_assistant(broker)
    replies = "media-node/homeassistant/reply/x"  # read through its media-node/# subscription
    cmd = f"media-node/{camera.node_id}/cmd"
    async with transport(broker, camera, parts(fanout)):
        await wait_for(lambda: len(configs(ha)) == 14, what="the configs")
        ha.publish(f"{cmd}/snapshot", b"snapshot", response_topic=f"{replies}/1", corr=b"1")
        await wait_for(lambda: ha.on(replies), what="the snapshot reply")
        reply = json.loads(ha.on(replies)[0].payload)
        assert reply["ok"] and (reply["width"], reply["height"]) == (320, 240), reply
        [jpeg] = ha.on(f"media-node/{camera.node_id}/snapshot")
        assert not jpeg.retain and len(jpeg.payload) == reply["bytes"]
        with av.open(io.BytesIO(jpeg.payload), format="image2pipe") as c:
            frame = next(c.decode(video=0))
        info = fanout.source.info()
        assert (frame.width, frame.height) == (info.width, info.height) == (320, 240)
        ha.publish(f"{cmd}/ring", b"ring", response_topic=f"{replies}/2", corr=b"2")
        await wait_for(lambda: len(ha.on(replies)) == 2, what="the ring reply")
        assert json.loads(ha.on(replies)[1].payload) == {"ok": True, "calling": [], "skipped": {}}
        await wait_for(lambda: ha.on(f"media-node/{camera.node_id}/ha/event"), what="the ring event")
    ha.messages.clear()
    async with transport(broker, camera, parts(None)):  # snapshots off
        await wait_for(lambda: len(configs(ha)) == 12, what="the configs")
        ha.publish(f"{cmd}/snapshot", b"", response_topic=f"{replies}/3", corr=b"3")
        await wait_for(lambda: ha.on(replies), what="the refusal")
        refusal = json.loads(ha.on(replies)[0].payload)
        assert refusal["ok"] is False and refusal["reason"] == "snapshots-off", refusal
        assert "[snapshot] enabled" in refusal["message"]
        assert not ha.on(f"media-node/{camera.node_id}/snapshot")
        image = f"homeassistant/image/{camera.node_id}/snapshot/config"
        await wait_for(
            lambda: any(m.topic == image and not m.payload for m in ha.messages),
            what="the image entity removed (snapshots are off now)",
        )
    ha.close()


async def test_snapshots_are_for_controllers_and_commands_for_controllers_only(broker, nodes, fanout):
    """The ACL: a node never reads another node's snapshot, nor rings another node;
    the camera reads HA's birth message (the re-announce test depends on it)."""
    _, camera, stranger, _ = nodes
    ha = await home_assistant(broker)
    spy = Watcher(broker, stranger.node_id)
    assert await spy.connected()
    marker = f"media-node/{stranger.node_id}/inbox"
    spy.c.subscribe(f"media-node/{camera.node_id}/snapshot", qos=1)
    spy.c.subscribe(marker, qos=1)
    await wait_for(lambda: len(spy.suback) == 2, what="SUBACKs")
    async with transport(broker, camera, parts(fanout)) as t:
        await wait_for(lambda: t.connected and len(configs(ha)) == 14, what="the camera")
        # a node may not publish commands to another node: refused by the broker
        denied = spy.publish(f"media-node/{camera.node_id}/cmd/ring", b"ring", qos=1)
        denied.wait_for_publish(10)
        await t.commands.take_and_publish("test")
        t.publish(marker, b"marker", qos=1)  # after the picture, from the same publisher
        await wait_for(lambda: spy.on(marker), what="the marker")
        await wait_for(lambda: ha.on(f"media-node/{camera.node_id}/snapshot"), what="HA's copy")
        assert not spy.on(f"media-node/{camera.node_id}/snapshot"), "a node read a snapshot"
        assert t.parts.doorbell.rings == 0, "a node rang another node"
    spy.close()
    ha.close()


async def test_every_n_seconds_a_snapshot_comes_by_itself(broker, nodes, fanout):
    _, camera, _, _ = nodes
    ha = await home_assistant(broker)
    async with transport(broker, camera, parts(fanout, snapshot_every=1)):
        await wait_for(lambda: len(ha.on(f"media-node/{camera.node_id}/snapshot")) >= 2, what="two snapshots")
    ha.close()
