"""MQTT trust through the whole daemon (node.service.Service with real media and a real
CallManager) on a real mosquitto with the broker role's ACL: a link asking for its reply
in another node's reply tree is refused before any call is set up (no confused deputy);
a sealed link without a response topic sets up its call and is answered on the verified
sender's inbox (the answer is not thrown away); a command from a controller the
broker knows but the node's config does not is refused; the `rejected` events repeat
nothing the sender sent."""

from __future__ import annotations

import json

import pytest
from transports.broker import Broker
from transports.helpers import check_answer
from transports.test_mqtt import Watcher, wait_for

from node.links import make_link

from .daemon import configure, real_view_request, running
from .test_mqtt_trust import topic, watcher

pytestmark = pytest.mark.timeout(150)

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 101\r\na=recvonly\r\n"


@pytest.fixture
def nodes(make_node, tmp_path):
    camera, viewer, victim = (make_node(n) for n in ("camera", "viewer", "victim"))
    camera.trust(viewer, "view", address="127.0.0.2")
    viewer.trust(camera, "view", address="127.0.0.1")
    broker = Broker(
        tmp_path / "broker", nodes=[camera, viewer, victim], controllers=["controller", "intruder"]
    )
    broker.start()
    # the broker knows two controllers; this node's config names only one
    mqtt = broker.config_for(camera.node_id, controllers=["controller"], home_assistant_user="")
    configure(camera, mqtt=mqtt)
    yield camera, viewer, victim, broker
    broker.stop()


def rejected(events: Watcher) -> list[dict]:
    found = [json.loads(m.payload) for m in events.messages if m.topic.endswith("/events")]
    return [e for e in found if e.get("event") == "rejected"]


async def test_the_daemon_answers_only_the_verified_sender_and_reflects_nothing(nodes):
    camera, viewer, victim, broker = nodes
    secret = "192.168.1.5"
    spy = await watcher(broker, victim.node_id, topic(victim, "reply", "#"))
    me = await watcher(broker, viewer.node_id, topic(viewer, "inbox"), topic(viewer, "reply", "#"))
    events = await watcher(broker, "controller", topic(camera, "events"))
    try:
        async with running(camera) as service:
            await wait_for(
                lambda: all(getattr(t, "connected", True) for t in service.transports),
                what="the daemon on the broker",
            )
            # 6: an allowlisted peer asks for the answer in the victim's reply tree
            deputy = await real_view_request(viewer, camera)
            elsewhere = topic(victim, "reply", camera.node_id, "x")
            me.publish(topic(camera, "inbox"), deputy.text, response_topic=elsewhere)
            await wait_for(lambda: rejected(events), what="the refusal event")
            assert rejected(events)[0]["reason"] == "bad-request", rejected(events)
            assert not service.manager.active(), "refused before a call was set up"
            # 9: sealed, no response topic: its call is set up and answered to its sender
            sealed = await real_view_request(viewer, camera, sealed=True)
            me.publish(topic(camera, "inbox"), sealed.text)
            await wait_for(lambda: me.on(topic(viewer, "inbox")), what="the answer in the sender's inbox")
            check_answer(viewer, sealed, me.on(topic(viewer, "inbox"))[0].payload.decode())
            [call] = service.manager.active()
            # 7: a response topic outside the sender's tree, holding a secret, is refused
            # (before the link, expired too, is even looked at) and repeated nowhere
            expired = make_link(viewer.identity, "view-request", camera.node_id, sdp=SDP, now=0)
            me.publish(topic(camera, "inbox"), expired.text, response_topic=f"media-node/{secret}/reply/x")
            await wait_for(lambda: len(rejected(events)) == 2, what="the second refusal")
            # 8: a command from a controller the ACL knows but this node's config does not
            intruder = await watcher(broker, "intruder", topic("intruder", "reply", "#"))
            try:
                intruder.publish(
                    topic(camera, "cmd", "call", "intruder"),
                    b"viewer",
                    response_topic=topic("intruder", "reply", camera.node_id, "1"),
                )
                await wait_for(lambda: len(rejected(events)) == 3, what="the intruder's command refused")
                await wait_for(lambda: intruder.on(topic("intruder", "reply")), what="the intruder told why")
            finally:
                intruder.close()
            assert service.manager.active() == [call], "the intruder's command set up nothing"
        assert [r["reason"] for r in rejected(events)] == ["bad-request"] * 3
        assert len({r["message"] for r in rejected(events)}) == 1  # the fixed text, not the topic
        texts = [m.payload.decode(errors="replace") for w in (events, me, spy) for m in w.messages]
        assert not [t for t in texts if secret in t], texts
        assert not spy.on(topic(victim, "reply")), "nothing in the victim's reply tree"
    finally:
        for w in (spy, me, events):
            w.close()
