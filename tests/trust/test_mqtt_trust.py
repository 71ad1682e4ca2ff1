"""MQTT trust, against a real mosquitto with the broker role's own ACL: the node answers
only in the requester's own reply tree (no confused deputy), refusals repeat nothing a
sender sent, commands are taken only from configured controllers on the topic the ACL
lets each write alone, and a sealed link without a response topic is still answered
(to its verified sender)."""

from __future__ import annotations

import json

import pytest
from transports.broker import Broker
from transports.helpers import Responder, check_answer, view_request
from transports.test_mqtt import Watcher, wait_for

from node.links import make_link
from node.transports.mqtt import MqttTransport
from node.transports.mqtt.messages import peek_claims

pytestmark = pytest.mark.timeout(120)

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 101\r\na=recvonly\r\n"


@pytest.fixture
def nodes(make_node):
    viewer, camera, victim = (make_node(n) for n in ("viewer", "camera", "victim"))
    camera.trust(viewer, "view,call")
    viewer.trust(camera, "view,call")
    return viewer, camera, victim


@pytest.fixture
def broker(tmp_path, nodes):
    b = Broker(tmp_path / "broker", nodes=nodes, controllers=["controller", "intruder"])
    b.start()
    yield b
    b.stop()


def topic(node, *parts: str) -> str:
    node_id = node if isinstance(node, str) else node.node_id
    return "/".join(["media-node", node_id, *parts])


async def watcher(broker, user, *subscriptions) -> Watcher:
    w = Watcher(broker, user)
    assert await w.connected()
    for t in subscriptions:
        w.c.subscribe(t, qos=1)
    await wait_for(lambda: len(w.suback) == len(subscriptions), what="SUBACKs")
    assert not any(rc.is_failure for rc in w.suback)
    return w


def camera_transport(broker, camera, responder, **kw):
    return MqttTransport(
        broker.config_for(camera.node_id), camera.identity, responder, peers=camera.peers, **kw
    )


async def marker_through(w_from: Watcher, w_to: Watcher, where: str) -> None:
    """Once `w_to` has a marker sent after the messages under test, it would have had those."""
    w_from.publish(where, b"marker")
    await wait_for(lambda: any(m.payload == b"marker" for m in w_to.on(where)), what="the marker")


async def test_the_node_answers_only_in_the_requesters_own_reply_tree(broker, nodes):
    viewer, camera, victim = nodes
    victim_tree = topic(victim, "reply", "#")
    spy = await watcher(broker, victim.node_id, victim_tree)
    me = await watcher(broker, viewer.node_id, topic(viewer, "inbox"), topic(viewer, "reply", "#"))
    events = await watcher(broker, "controller", topic(camera, "events"))
    responder = Responder(camera)
    try:
        async with camera_transport(broker, camera, responder):
            # an allowlisted peer asks the camera to put its answer in the victim's tree
            deputy = view_request(viewer, camera)
            me.publish(
                topic(camera, "inbox"),
                deputy.text,
                response_topic=topic(victim, "reply", camera.node_id, "x"),
            )
            await wait_for(lambda: events.on(topic(camera, "events")), what="the refusal event")
            event = json.loads(events.on(topic(camera, "events"))[0].payload)
            assert event["reason"] == "bad-request" and not event["replied"], event
            assert not responder.handled, "refused before any work (no nonce used, no call)"
            # sealed, the claimed sender is unknown until opened: answered, but to the
            # verified sender's own inbox, never into the victim's tree
            sealed = view_request(viewer, camera, sealed=True)
            me.publish(
                topic(camera, "inbox"),
                sealed.text,
                response_topic=topic(victim, "reply", camera.node_id, "y"),
            )
            await wait_for(lambda: me.on(topic(viewer, "inbox")), what="the answer in the sender's inbox")
            check_answer(viewer, sealed, me.on(topic(viewer, "inbox"))[0].payload.decode())
            # the right tree works
            ok = view_request(viewer, camera)
            me.publish(
                topic(camera, "inbox"), ok.text, response_topic=topic(viewer, "reply", camera.node_id, "z")
            )
            await wait_for(lambda: me.on(topic(viewer, "reply")), what="the answer")
            check_answer(viewer, ok, me.on(topic(viewer, "reply"))[0].payload.decode())
        # the ACL: a node writes only its own branch of another's reply tree
        me.publish(topic(victim, "reply", camera.node_id, "forged"), b"forged reply")
        await marker_through(me, spy, topic(victim, "reply", viewer.node_id, "m"))
        assert [m.topic for m in spy.on(topic(victim, "reply"))] == [
            topic(victim, "reply", viewer.node_id, "m")
        ]
    finally:
        for w in (spy, me, events):
            w.close()
        responder.close()


async def test_refusals_repeat_nothing_the_sender_sent(broker, nodes):
    viewer, camera, _ = nodes
    secret = "192.168.1.5"
    calls = []

    async def on_call(peer, transport):
        calls.append(peer.name)

    ctl = await watcher(broker, "controller", topic("controller", "reply", "#"), topic(camera, "events"))
    me = await watcher(broker, viewer.node_id)
    try:
        async with camera_transport(broker, camera, Responder(camera), on_call=on_call):
            reply_to = topic("controller", "reply", camera.node_id, "1")
            ctl.publish(
                topic(camera, "cmd", "call", "controller"),
                secret.encode(),
                response_topic=reply_to,
                corr=b"1",
            )
            ctl.publish(
                topic(camera, "cmd", "call", "controller"), b"viewer", response_topic=f"evil/{secret}"
            )
            bad = make_link(viewer.identity, "view-request", camera.node_id, sdp=SDP, now=0).text  # expired
            me.publish(topic(camera, "inbox"), bad, response_topic=f"media-node/{secret}/reply/x")
            await wait_for(lambda: len(ctl.on(topic(camera, "events"))) == 3, what="three refusals")
            await wait_for(lambda: ctl.on(topic("controller", "reply")), what="the error reply")
        texts = [m.payload.decode() for m in ctl.messages]
        assert not [t for t in texts if secret in t], texts
        assert json.loads(ctl.on(topic("controller", "reply"))[0].payload) == {
            "ok": False,
            "reason": "unknown-peer",
            "message": "the named peer is not in this node's allowlist",
        }
        assert not calls
    finally:
        ctl.close()
        me.close()


async def test_commands_only_from_configured_controllers_on_their_own_topic(broker, nodes):
    """The controller path (Home Assistant's: it cannot sign): a command is taken only on
    cmd/<command>/<controller>, which the ACL lets that controller alone write, and only
    from a controller named in the node's config."""
    viewer, camera, _ = nodes
    calls = []

    async def on_call(peer, transport):
        calls.append(peer.name)

    replies = topic("controller", "reply", "#")
    ctl = await watcher(broker, "controller", replies, topic(camera, "events"))
    intruder = await watcher(broker, "intruder", topic("intruder", "reply", "#"))
    node = await watcher(broker, viewer.node_id)
    config = broker.config_for(camera.node_id, controllers=["controller"], home_assistant_user="")
    try:
        async with MqttTransport(
            config, camera.identity, Responder(camera), peers=camera.peers, on_call=on_call
        ):
            # refused by the ACL: another controller's topic, the old shared topic, a node
            ctl.publish(topic(camera, "cmd", "call", "intruder"), b"viewer")
            ctl.publish(topic(camera, "cmd", "call"), b"viewer")
            node.publish(topic(camera, "cmd", "call", "controller"), b"viewer")
            # refused by the node: a controller the ACL knows but this node's config does not
            intruder.publish(
                topic(camera, "cmd", "call", "intruder"),
                b"viewer",
                response_topic=topic("intruder", "reply", camera.node_id, "1"),
            )
            await wait_for(lambda: ctl.on(topic(camera, "events")), what="the refusal of the intruder")
            event = json.loads(ctl.on(topic(camera, "events"))[0].payload)
            assert event["reason"] == "bad-request" and event["topic"].endswith("-byte topic)"), event
            # accepted: the configured controller on its own topic
            ctl.publish(
                topic(camera, "cmd", "call", "controller"),
                b"viewer",
                response_topic=topic("controller", "reply", camera.node_id, "2"),
                corr=b"2",
            )
            await wait_for(lambda: ctl.on(topic("controller", "reply")), what="the command's reply")
        assert json.loads(ctl.on(topic("controller", "reply"))[0].payload)["ok"] is True
        assert calls == ["viewer"]
        assert len(ctl.on(topic(camera, "events"))) == 1  # the ACL stopped the other three
        [refusal] = intruder.on(topic("intruder", "reply"))  # told why, in its own tree
        assert json.loads(refusal.payload)["reason"] == "bad-request"
    finally:
        for w in (ctl, intruder, node):
            w.close()


async def test_a_sealed_link_without_response_topic_is_answered_to_its_sender(broker, nodes):
    viewer, camera, _ = nodes
    me = await watcher(broker, viewer.node_id, topic(viewer, "inbox"))
    responder = Responder(camera)
    try:
        async with camera_transport(broker, camera, responder):
            sealed = view_request(viewer, camera, sealed=True)
            me.publish(topic(camera, "inbox"), sealed.text)
            await wait_for(lambda: me.on(topic(viewer, "inbox")), what="the answer in the sender's inbox")
        reply = me.on(topic(viewer, "inbox"))[0].payload.decode()
        check_answer(viewer, sealed, reply)
        assert peek_claims(reply) is None or peek_claims(reply)[0].aud == viewer.node_id
    finally:
        me.close()
        responder.close()
