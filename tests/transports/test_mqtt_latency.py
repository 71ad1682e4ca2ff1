"""Links and replies leave at once: both ends' sockets and the broker's (the role's
config) have Nagle's algorithm off, so a reply never waits behind a delayed ACK."""

from __future__ import annotations

import socket

import pytest

from node.transports.mqtt import MqttClient, MqttTransport

from .broker import Broker
from .helpers import Responder, check_answer, view_request

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def nodes(make_node):
    viewer, camera = make_node("viewer"), make_node("camera")
    camera.trust(viewer, "view")
    viewer.trust(camera, "view")
    return viewer, camera


@pytest.fixture
def broker(tmp_path, nodes):
    b = Broker(tmp_path / "broker", nodes=nodes, controllers=["controller"])
    b.start()
    yield b
    b.stop()


def _no_delay(client: MqttClient) -> int:
    sock = client._client.socket()
    assert sock is not None, "not connected"
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_node_and_viewer_sockets_send_without_delay(broker, nodes):
    viewer, camera = nodes
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
