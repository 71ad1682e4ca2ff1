"""MQTT transport against a real mosquitto (TLS, per-node passwords, the role's ACL)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import msgspec
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from node.transports import TransportError
from node.transports.mqtt import MqttClient, MqttTransport

from .broker import Broker
from .helpers import Responder, check_answer, view_request

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def nodes(make_node):
    viewer, camera, stranger, limited = (make_node(n) for n in ("viewer", "camera", "stranger", "limited"))
    camera.trust(viewer, "view,call")
    camera.trust(limited, "call")
    viewer.trust(camera, "view,call")
    limited.trust(camera, "view")
    return viewer, camera, stranger, limited


@pytest.fixture
def broker(tmp_path, nodes):
    b = Broker(tmp_path / "broker", nodes=nodes, controllers=["controller"], home_assistant=True)
    b.start()
    yield b
    b.stop()


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Watcher:
    """A plain paho client (what mosquitto_sub or Home Assistant would be)."""

    def __init__(self, broker: Broker, user: str | None, password: str | None = None):
        self.messages: list = []
        self.connack = None
        self.suback: list = []
        self.c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            protocol=paho.MQTTv5,
            client_id=f"watch-{time.monotonic_ns()}",
        )
        if user is not None:
            pw = password if password is not None else broker.password_files[user].read_text().strip()
            self.c.username_pw_set(user, pw)
        self.c.tls_set(ca_certs=str(broker.ca_file))
        self.c.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc)
        self.c.on_message = lambda c, u, m: self.messages.append(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.suback.extend(rcs)
        self.c.connect_async("127.0.0.1", broker.port)
        self.c.loop_start()

    async def connected(self) -> bool:
        await wait_for(lambda: self.connack is not None, what="CONNACK")
        return not self.connack.is_failure

    def on(self, topic_prefix: str) -> list:
        return [m for m in self.messages if m.topic.startswith(topic_prefix)]

    def publish(self, topic, payload, response_topic=None, corr=None, qos=1):
        props = Properties(PacketTypes.PUBLISH)
        if response_topic:
            props.ResponseTopic = response_topic
        if corr is not None:
            props.CorrelationData = corr
        return self.c.publish(topic, payload, qos=qos, properties=props)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


async def test_anonymous_and_wrong_passwords_are_refused(broker, nodes):
    viewer = nodes[0]
    anonymous = Watcher(broker, None)
    wrong = Watcher(broker, viewer.node_id, password="not-the-password")
    try:
        assert not await anonymous.connected()
        assert not await wrong.connected()
        bad = broker.config_for(viewer.node_id, password_file=str(broker.folder / "controller.password"))
        with pytest.raises(TransportError, match="refused"):
            await MqttClient(bad, viewer.identity).connect(timeout=20)
        ok = Watcher(broker, "controller")
        assert await ok.connected()
        ok.close()
    finally:
        anonymous.close()
        wrong.close()


async def test_view_request_is_answered_through_the_broker(broker, nodes):
    viewer, camera, *_ = nodes
    responder = Responder(camera)
    ctl = Watcher(broker, "controller")
    assert await ctl.connected()
    ctl.c.subscribe("media-node/+/status", qos=1)
    async with MqttTransport(
        broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers, name="camera"
    ):
        async with MqttClient(broker.config_for(viewer.node_id), viewer.identity) as client:
            request = view_request(viewer, camera)
            reply = await client.request(
                camera.peers.find("viewer") and viewer.peers.find("camera"), request.text, timeout=20
            )
            check_answer(viewer, request, reply)
            # the same link again is refused with a reason, not dropped
            with pytest.raises(TransportError) as refused:
                await client.request(camera.node_id, request.text, timeout=20)
            assert refused.value.reason == "replayed"
        status = f"media-node/{camera.node_id}/status"
        await wait_for(lambda: ctl.on(status), what="retained status")
        assert json.loads(ctl.on(status)[-1].payload) | {"at": 0} == {
            "state": "online",
            "node_id": camera.node_id,
            "name": "camera",
            "calls": 0,
            "version": json.loads(ctl.on(status)[-1].payload)["version"],
            "at": 0,
        }
    await wait_for(
        lambda: json.loads(ctl.on(status)[-1].payload)["state"] == "offline", what="offline status"
    )
    ctl.close()
    responder.close()


async def test_a_node_cannot_read_another_nodes_inbox(broker, nodes):
    viewer, camera, stranger, _ = nodes
    responder = Responder(camera)
    spy = Watcher(broker, stranger.node_id)
    assert await spy.connected()
    mine = f"media-node/{stranger.node_id}/reply/{viewer.node_id}/spy"  # the viewer's branch
    spy.c.subscribe(f"media-node/{camera.node_id}/inbox", qos=1)
    spy.c.subscribe(f"media-node/{camera.node_id}/#", qos=1)
    spy.c.subscribe(mine, qos=1)
    await wait_for(lambda: len(spy.suback) == 3, what="SUBACKs")
    async with (
        MqttTransport(broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers),
        MqttClient(broker.config_for(viewer.node_id), viewer.identity) as client,
    ):
        request = view_request(viewer, camera)
        check_answer(viewer, request, await client.request(camera.node_id, request.text, timeout=20))
        # a marker after the link, from the same publisher: once the spy has it, it
        # would have had the link too
        client.publish(mine, b"marker", qos=1)
        await wait_for(lambda: spy.on(mine), what="the marker")
    assert not spy.on(f"media-node/{camera.node_id}/"), "the spy read another node's topics"
    # nor may a node publish commands to another node
    assert spy.suback[2].is_failure is False
    spy.close()
    responder.close()


async def test_links_published_while_the_node_is_offline_arrive_later(broker, nodes):
    viewer, camera, *_ = nodes
    responder = Responder(camera)
    transport = MqttTransport(
        broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers
    )
    await transport.start(wait=True)
    await transport.stop()  # the persistent session stays on the broker
    async with MqttClient(broker.config_for(viewer.node_id), viewer.identity) as client:
        request = view_request(viewer, camera)
        pending = asyncio.ensure_future(client.request(camera.node_id, request.text, timeout=60))
        await asyncio.sleep(0.5)
        assert not pending.done() and not responder.handled
        transport = MqttTransport(
            broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers
        )
        await transport.start(wait=True)
        check_answer(viewer, request, await pending)
        await transport.stop()
    responder.close()


async def test_broker_killed_and_restarted_mid_run(broker, nodes):
    viewer, camera, *_ = nodes
    responder = Responder(camera)
    async with (
        MqttTransport(
            broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers
        ) as transport,
        MqttClient(broker.config_for(viewer.node_id), viewer.identity) as client,
    ):
        first = view_request(viewer, camera)
        check_answer(viewer, first, await client.request(camera.node_id, first.text, timeout=20))
        subscribed = time.time()
        await wait_for(lambda: broker.persisted_after(subscribed + 0.01), what="the broker to save sessions")
        broker.kill()
        await wait_for(lambda: not client.connected and not transport.connected, what="both to notice")
        # published while the broker is down: paho keeps QoS 1 messages until it is back
        during = [view_request(viewer, camera) for _ in range(3)]
        pending = [asyncio.ensure_future(client.request(camera.node_id, r.text, timeout=60)) for r in during]
        await asyncio.sleep(0.5)
        broker.start()
        replies = await asyncio.gather(*pending)
        for request, reply in zip(during, replies, strict=False):
            check_answer(viewer, request, reply)
        assert transport.connected and client.connected
    responder.close()


async def test_cmd_call_errors_name_their_reason(broker, nodes):
    viewer, camera, stranger, limited = nodes
    calls = []

    async def on_call(peer, transport):
        calls.append(peer.name)

    ctl = Watcher(broker, "controller")
    assert await ctl.connected()
    replies = f"media-node/controller/reply/{camera.node_id}/t"
    ctl.c.subscribe(replies + "/#", qos=1)
    ctl.c.subscribe(f"media-node/{camera.node_id}/events", qos=1)
    await wait_for(lambda: len(ctl.suback) == 2, what="SUBACKs")
    async with MqttTransport(
        broker.config_for(camera.node_id),
        camera.identity,
        Responder(camera),
        peers=camera.peers,
        on_call=on_call,
    ):
        cmd = f"media-node/{camera.node_id}/cmd/call/controller"
        cases = {
            b"nobody": "unknown-peer",
            stranger.node_id.encode(): "unknown-peer",
            b"limited": None,
            b"viewer": None,
            b'{"peer": "viewer"}': None,
            b'{"who": 1}': "bad-request",
            b"": "empty",
            b"\xff\xfe": "malformed",
            b"x" * 70000: "oversized",
        }
        for i, payload in enumerate(cases):
            ctl.publish(cmd, payload, response_topic=f"{replies}/{i}", corr=bytes([i]))
        await wait_for(lambda: len(ctl.on(replies)) == len(cases), what="one reply per command")
        got = {m.properties.CorrelationData: json.loads(m.payload) for m in ctl.on(replies)}
        for i, expected in enumerate(cases.values()):
            reply = got[bytes([i])]
            if expected is None:
                assert reply["ok"] is True, reply
            else:
                assert reply == {"ok": False, "reason": expected, "message": reply["message"]}, reply
        # limited has 'call' in the camera's allowlist; viewer too; nobody else got called
        assert sorted(calls) == ["limited", "viewer", "viewer"]
        events = f"media-node/{camera.node_id}/events"
        await wait_for(lambda: len(ctl.on(events)) == 6, what="one rejection event per refusal")
        assert sorted(json.loads(m.payload)["reason"] for m in ctl.on(events)) == sorted(
            r for r in cases.values() if r
        )
    ctl.close()


KILLED_NODE = """
import asyncio, sys
import msgspec
from pathlib import Path
from node.config import MqttSection
from node.identity import Identity
from node.transports.mqtt import MqttTransport

async def handler(text):
    return None

async def main():
    config = msgspec.json.decode(sys.argv[2], type=MqttSection)
    t = MqttTransport(config, Identity.load(Path(sys.argv[1])), handler)
    await t.start(wait=True)
    print("up", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_last_will_says_offline_when_the_node_dies(broker, nodes):
    import subprocess
    import sys
    from pathlib import Path

    camera = nodes[1]
    watcher = Watcher(broker, "controller")
    assert await watcher.connected()
    status = f"media-node/{camera.node_id}/status"
    watcher.c.subscribe(status, qos=1)
    config = broker.config_for(camera.node_id)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_NODE, str(camera.home.key_file), msgspec.json.encode(config).decode()],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == b"up"
        await wait_for(
            lambda: any(json.loads(m.payload)["state"] == "online" for m in watcher.on(status)), what="online"
        )
        proc.kill()
        await wait_for(
            lambda: json.loads(watcher.on(status)[-1].payload)["state"] == "offline", what="the last will"
        )
        assert json.loads(watcher.on(status)[-1].payload)["node_id"] == camera.node_id
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        watcher.close()


async def test_a_response_topic_outside_reply_trees_is_refused(broker, nodes):
    viewer, camera, *_ = nodes
    responder = Responder(camera)
    ctl = Watcher(broker, "controller")
    sender = Watcher(broker, viewer.node_id)
    assert await ctl.connected() and await sender.connected()
    events, status = f"media-node/{camera.node_id}/events", f"media-node/{camera.node_id}/status"
    ctl.c.subscribe(events, qos=1)
    ctl.c.subscribe(status, qos=1)
    await wait_for(lambda: len(ctl.suback) == 2, what="SUBACKs")
    async with MqttTransport(
        broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers
    ):
        await wait_for(lambda: ctl.on(status), what="status")
        for target in (
            status,
            f"media-node/{viewer.node_id}/inbox",
            "homeassistant/button/x/y/config",
            f"media-node/{viewer.node_id}/replies/1",
        ):
            sender.publish(
                f"media-node/{camera.node_id}/inbox",
                view_request(viewer, camera).text,
                response_topic=target,
                corr=b"1",
            )
        await wait_for(lambda: len(ctl.on(events)) == 4, what="4 rejection events")
    assert all(json.loads(m.payload)["reason"] == "bad-request" for m in ctl.on(events))
    assert not responder.handled
    assert all(json.loads(m.payload)["state"] in ("online", "offline") for m in ctl.on(status))
    ctl.close()
    sender.close()
    responder.close()


async def test_the_documented_mosquitto_rr_examples_work(broker, nodes, tmp_path):
    """docs/operations.md's examples, run with the real mosquitto clients."""
    import shutil
    import subprocess

    viewer, camera, *_ = nodes
    if not shutil.which("mosquitto_rr"):
        pytest.fail("mosquitto_rr is missing (apt-get install mosquitto-clients)")
    calls = []

    async def on_call(peer, transport):
        calls.append(peer.name)

    common = [
        "-h",
        "127.0.0.1",
        "-p",
        str(broker.port),
        "--cafile",
        str(broker.ca_file),
        "-q",
        "1",
        "-W",
        "30",
    ]

    def rr(user, topic, reply, message):
        pw = broker.password_files[user].read_text().strip()
        return subprocess.run(
            ["mosquitto_rr", *common, "-u", user, "-P", pw, "-t", topic, "-e", reply, "-m", message],
            capture_output=True,
            timeout=60,
        )

    responder = Responder(camera)
    async with MqttTransport(
        broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers, on_call=on_call
    ):
        out = await asyncio.to_thread(
            rr,
            "controller",
            f"media-node/{camera.node_id}/cmd/call/controller",
            f"media-node/controller/reply/{camera.node_id}/1",
            "viewer",
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["ok"] is True and calls == ["viewer"]
        request = view_request(viewer, camera)
        out = await asyncio.to_thread(
            rr,
            viewer.node_id,
            f"media-node/{camera.node_id}/inbox",
            f"media-node/{viewer.node_id}/reply/{camera.node_id}/1",
            request.text,
        )
        assert out.returncode == 0, out.stderr
        check_answer(viewer, request, out.stdout.decode())
        out = await asyncio.to_thread(
            rr,
            viewer.node_id,
            f"media-node/{camera.node_id}/inbox",
            f"media-node/{viewer.node_id}/reply/{camera.node_id}/1",
            request.text,
        )
        assert json.loads(out.stdout)["reason"] == "replayed"
    responder.close()


HANGING_NODE = """
import asyncio, sys
import msgspec
from pathlib import Path
from node.config import MqttSection
from node.identity import Identity
from node.transports.mqtt import MqttTransport

async def handler(text):
    Path(sys.argv[3]).write_text("in hand")
    await asyncio.sleep(3600)  # killed here, the link unanswered and unacknowledged

async def main():
    config = msgspec.json.decode(sys.argv[2], type=MqttSection)
    t = MqttTransport(config, Identity.load(Path(sys.argv[1])), handler)
    await t.start(wait=True)
    print("up", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_link_in_hand_when_the_node_dies_is_delivered_again(broker, nodes, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    viewer, camera, *_ = nodes
    marker = tmp_path / "in-hand"
    config = broker.config_for(camera.node_id)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HANGING_NODE,
            str(camera.home.key_file),
            msgspec.json.encode(config).decode(),
            str(marker),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    responder = Responder(camera)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == b"up"
        async with MqttClient(broker.config_for(viewer.node_id), viewer.identity) as client:
            request = view_request(viewer, camera)
            pending = asyncio.ensure_future(client.request(camera.node_id, request.text, timeout=60))
            await wait_for(marker.exists, what="the link in the doomed node's hands")
            proc.kill()
            proc.wait(timeout=10)
            async with MqttTransport(config, camera.identity, responder, peers=camera.peers):
                check_answer(viewer, request, await pending)
            assert responder.handled[request.claims.nonce] == 1
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        responder.close()


# Links and replies leave at once: both ends' sockets and the broker's (the role's config)
# have Nagle's algorithm off, so a reply never waits behind a delayed ACK.
def _no_delay(client: MqttClient) -> int:
    sock = client._client.socket()
    assert sock is not None, "not connected"
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_node_and_viewer_sockets_send_without_delay(broker, nodes):
    viewer, camera = nodes[:2]
    assert "\nset_tcp_nodelay true\n" in broker.conf.read_text()  # the broker's side
    async with (
        MqttTransport(
            broker.config_for(camera.node_id),
            camera.identity,
            Responder(camera),
            peers=camera.peers,
            name="camera",
        ) as transport,
        MqttClient(broker.config_for(viewer.node_id), viewer.identity) as client,
    ):
        assert _no_delay(client) and _no_delay(transport.client)
        request = view_request(viewer, camera)
        check_answer(viewer, request, await client.request(camera.node_id, request.text, timeout=20))
