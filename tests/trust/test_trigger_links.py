"""A peer allowed `trigger` makes a node call one of its peers with a signed trigger
link, over any transport (here: the file drop; the call goes out over MQTT); a peer
without `trigger`, or a target without `call`, is refused. Whole daemons, a real
mosquitto with the broker role's ACL, loopback as the overlay."""

from __future__ import annotations

import pytest
from transports.broker import Broker
from transports.test_calls_over_mqtt import ADDRESSES, configure
from transports.test_mqtt import wait_for

from node.links import LinkOpener, make_link
from node.service import Service
from node.transports import TransportError
from node.transports.filedrop import FileDropClient
from node.transports.mqtt import MqttRequester

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def fleet(make_node, tmp_path):
    camera, door, laptop = make_node("camera"), make_node("door"), make_node("laptop")
    camera.trust(door, "view,call", address=ADDRESSES["door"])
    door.trust(camera, "view,call", address=ADDRESSES["camera"])
    camera.trust(laptop, "view,trigger", address=ADDRESSES["laptop"])
    laptop.trust(camera, "view", address=ADDRESSES["camera"])
    broker = Broker(tmp_path / "broker", nodes=[camera, door, laptop], controllers=["controller"])
    broker.start()
    for node in (camera, door, laptop):
        configure(node, broker, media=node.name != "laptop")
    text = camera.home.config_file.read_text()  # the camera also takes links by file drop
    on = text.replace(
        "[filedrop]\n# Watch the home's inbox/ for link files.\nenabled = false",
        "[filedrop]\n# Watch the home's inbox/ for link files.\nenabled = true",
    )
    assert on != text
    camera.home.config_file.write_text(on)
    yield camera, door, laptop, broker
    broker.stop()


def trigger(sender, camera, target):
    return make_link(sender.identity, "trigger", camera.node_id, tgt=target.node_id)


async def test_a_trigger_link_by_file_drop_makes_the_node_call_and_refusals(fleet):
    camera, door, laptop, broker = fleet
    cam, door_service = Service(camera.home), Service(door.home)
    await cam.start()
    await door_service.start()
    try:
        await wait_for(
            lambda: all(getattr(t, "connected", True) for s in (cam, door_service) for t in s.transports),
            what="both daemons on the broker",
        )
        # accepted: the laptop may trigger; the door may be called
        link = trigger(laptop, camera, door)
        reply = await FileDropClient(camera.home.path).request(None, link.text, 60)
        result = LinkOpener(laptop.identity, laptop.peers).open(reply, expect_offer=link.digest)
        assert result.claims.kind == "result" and result.claims.res["peer"] == "door", result.claims
        [outgoing] = cam.manager.active()
        assert outgoing.kind == "outgoing" and outgoing.peer.name == "door"
        assert outgoing.id == result.claims.res["call"]
        await wait_for(door_service.manager.active, timeout=30, what="the door's incoming call")
        # refused: the door may call but not trigger (over MQTT this time)
        with pytest.raises(TransportError) as refused:
            await MqttRequester(broker.config_for(door.node_id), door.identity).request(
                camera.node_id, trigger(door, camera, door).text, 30
            )
        assert refused.value.reason == "no-permission"
        # refused: the target may not be called (the laptop has no 'call')
        link = trigger(laptop, camera, laptop)
        reply = await FileDropClient(camera.home.path).request(None, link.text, 60)
        error = LinkOpener(laptop.identity, laptop.peers).open(reply, expect_offer=link.digest)
        assert error.claims.kind == "error" and error.claims.err["code"] == "no-permission"
        assert len(cam.manager.active()) == 1
    finally:
        await cam.stop()
        await door_service.stop()
