"""Whole daemons (node.service.Service: overlay, media, CallManager, MQTT) talking
through a real mosquitto: a call triggered on cmd/call completes between two nodes, and
`media-node view PEER --via mqtt` receives video end to end. Loopback is the overlay
(static provider: camera 127.0.0.1, door 127.0.0.2), as in the demo."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from node.config import Config, render_default_config
from node.service import Service
from node.transports.mqtt.messages import peek_claims

from .broker import Broker
from .test_mqtt import Watcher, wait_for

pytestmark = pytest.mark.timeout(150)

ADDRESSES = {"camera": "127.0.0.1", "door": "127.0.0.2", "laptop": "127.0.0.3"}


def configure(node, broker: Broker, media: bool) -> None:
    config = Config()
    config.node.name = node.name
    config.overlay.provider = "static"
    config.overlay.address = ADDRESSES[node.name]
    config.overlay.cidr = "127.0.0.0/8"
    config.filedrop.enabled = False  # MQTT only: the handshake must go through the broker
    config.mqtt = broker.config_for(node.node_id)
    if media:
        config.media.video = "testsrc"
        config.media.audio = "tone"
    node.home.config_file.write_text(render_default_config(config))


@pytest.fixture
def fleet(make_node, tmp_path):
    camera, door, laptop = make_node("camera"), make_node("door"), make_node("laptop")
    camera.trust(door, "view,call", address=ADDRESSES["door"])
    door.trust(camera, "view,call", address=ADDRESSES["camera"])
    camera.trust(laptop, "view", address=ADDRESSES["laptop"])
    laptop.trust(camera, "view", address=ADDRESSES["camera"])
    broker = Broker(tmp_path / "broker", nodes=[camera, door, laptop], controllers=["controller"])
    broker.start()
    for node in (camera, door, laptop):
        configure(node, broker, media=node.name != "laptop")
    yield camera, door, laptop, broker
    broker.stop()


async def test_cmd_call_completes_between_two_daemons(fleet):
    camera, door, _, broker = fleet
    ctl = Watcher(broker, "controller")
    assert await ctl.connected()
    replies = f"media-node/controller/reply/{camera.node_id}/call"
    for topic in (
        replies + "/#",
        f"media-node/{camera.node_id}/events",
        f"media-node/{door.node_id}/events",
        f"media-node/{camera.node_id}/status",
    ):
        ctl.c.subscribe(topic, qos=1)
    await wait_for(lambda: len(ctl.suback) == 4, what="SUBACKs")
    cam_service, door_service = Service(camera.home), Service(door.home)
    await cam_service.start()
    await door_service.start()
    try:
        mqtt = [t for t in cam_service.transports if type(t).__name__ == "MqttTransport"]
        await wait_for(
            lambda: mqtt[0].connected and all(t.connected for t in door_service.transports),
            what="both daemons on the broker",
        )
        ctl.publish(
            f"media-node/{camera.node_id}/cmd/call/controller",
            b"door",
            response_topic=f"{replies}/1",
            corr=b"1",
        )
        await wait_for(lambda: ctl.on(replies), timeout=60, what="the cmd/call reply")
        result = json.loads(ctl.on(replies)[0].payload)
        assert result["ok"] is True and result["peer"] == "door", result
        [outgoing] = cam_service.manager.active()
        assert outgoing.id == result["call"] and outgoing.kind == "outgoing"
        await wait_for(lambda: outgoing.connected_at is not None, timeout=30, what="media connected")
        [incoming] = door_service.manager.active()
        assert incoming.kind == "incoming" and incoming.peer.name == "camera"
        events = {
            t: [json.loads(m.payload) for m in ctl.on(t)]
            for t in (f"media-node/{camera.node_id}/events", f"media-node/{door.node_id}/events")
        }
        assert all(any(e["event"] == "call-started" for e in evs) for evs in events.values()), events
        await wait_for(
            lambda: json.loads(ctl.on(f"media-node/{camera.node_id}/status")[-1].payload)["calls"] == 1,
            what="status with one call",
        )
        # the events never carry an address
        text = json.dumps(events)
        assert not any(a in text for a in ADDRESSES.values())
    finally:
        await cam_service.stop()
        await door_service.stop()
        ctl.close()


async def test_view_via_mqtt_end_to_end_from_the_command_line(fleet):
    camera, _, laptop, broker = fleet
    service = Service(camera.home)
    await service.start()
    try:
        await wait_for(lambda: all(t.connected for t in service.transports), what="the camera on the broker")
        env = {**os.environ, "MEDIA_NODE_HOME": str(laptop.home.path)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "node.cli",
            "view",
            "camera",
            "--via",
            "mqtt",
            "--seconds",
            "2",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 90)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()[-2000:]
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["via"] == "mqtt" and summary["ok"] and summary["video_frames"] > 0, summary
        assert summary["remote_address"] == ADDRESSES["camera"]
    finally:
        await service.stop()


async def test_the_daemon_survives_1000_bad_messages_and_1000_bad_files(fleet, make_node):
    """The real daemon (CallManager.handle_link behind both transports) under abuse on
    both transports at once; a real view in the middle still gets video."""
    from node.links import LinkOpener
    from node.transports.filedrop import FileDropClient
    from node.transports.mqtt import MqttRequester
    from node.viewer import view

    from .abuse import bad_links
    from .helpers import view_request

    camera, door, laptop, broker = fleet
    stranger, limited = make_node("stranger"), make_node("limited")
    camera.trust(limited, "call")
    config_text = camera.home.config_file.read_text().replace(
        "[filedrop]\n# Watch the home's inbox/ for link files.\nenabled = false",
        "[filedrop]\n# Watch the home's inbox/ for link files.\nenabled = true",
    )
    assert "enabled = true" in config_text
    camera.home.config_file.write_text(config_text)
    service = Service(camera.home)
    await service.start()
    spam = Watcher(broker, laptop.node_id)
    try:
        assert await spam.connected()
        replies = f"media-node/{laptop.node_id}/reply/{camera.node_id}/abuse"
        spam.c.subscribe(replies + "/#", qos=1)
        await wait_for(
            lambda: len(spam.suback) == 1 and all(getattr(t, "connected", True) for t in service.transports),
            what="subscriptions and the daemon on the broker",
        )
        # a link the daemon accepts once (its toy SDP earns a signed error reply): copies are replays
        used = view_request(laptop, camera)
        reply = await FileDropClient(camera.home.path).request(None, used.text, 30)
        assert (
            LinkOpener(laptop.identity, laptop.peers).open(reply, expect_offer=used.digest).claims.kind
            == "error"
        )
        cases = bad_links(laptop, camera, stranger, limited, used.text)
        inbox = f"media-node/{camera.node_id}/inbox"
        viewing = None
        for i, (payload, _) in enumerate(cases):
            spam.publish(inbox, payload, response_topic=f"{replies}/{i}", corr=i.to_bytes(4, "big"))
            (camera.home.inbox / f"bad-{i:04d}").write_bytes(payload)
            if i == len(cases) // 2:
                viewing = asyncio.ensure_future(
                    view(
                        laptop.home,
                        "camera",
                        MqttRequester(broker.config_for(laptop.node_id), laptop.identity),
                        1.0,
                    )
                )
            if i % 50 == 0:
                await asyncio.sleep(0)
        summary = await asyncio.wait_for(viewing, 90)
        assert summary["ok"] and summary["video_frames"] > 0, summary

        # An error reply goes only to the claimed sender's own reply tree (a link that
        # names another sender gets none here: the laptop is not who it claims to be).
        def answered_here(payload: bytes) -> bool:
            peeked = peek_claims(payload.decode("ascii", "replace"))
            return peeked is None or peeked[0].iss == laptop.node_id

        expected = {i: exp for i, (payload, exp) in enumerate(cases) if answered_here(payload)}
        assert 0 < len(expected) < len(cases)
        await wait_for(
            lambda: len(spam.on(replies)) == len(expected), timeout=90, what="the MQTT error replies"
        )
        got = {
            int.from_bytes(m.properties.CorrelationData, "big"): json.loads(m.payload)
            for m in spam.on(replies)
        }
        assert set(got) == set(expected)
        wrong = [(i, got[i], exp) for i, exp in expected.items() if got[i].get("reason") != exp]
        assert not wrong, wrong[:5]
        await wait_for(
            lambda: len(list(camera.home.reasons.iterdir())) == len(cases),
            timeout=90,
            what="1000 rejected files",
        )
        wrong = [
            (i, exp)
            for i, (_, exp) in enumerate(cases)
            if json.loads((camera.home.reasons / f"bad-{i:04d}").read_text())["reason"] != exp
        ]
        assert not wrong, wrong[:5]
        # still serving, on both transports
        again = await view(laptop.home, "camera", FileDropClient(camera.home.path), 0.5)
        assert again["ok"], again
    finally:
        spam.close()
        await service.stop()
