"""The viewer's side of MQTT: `media-node view PEER --via mqtt` sends one link and waits
for its reply, on a connection of its own (the ClientTransport seam)."""

from __future__ import annotations

from ...config import MqttSection
from ...identity import Identity
from ...peers import Peer
from .client import CONNECT_TIMEOUT, MqttClient


class MqttRequester:
    """`media-node view PEER --via mqtt`: one connection per request (the viewer sends
    one link), closed as soon as the reply is in."""

    def __init__(self, config: MqttSection, identity: Identity, *, connect_timeout: float = CONNECT_TIMEOUT):
        self.config = config
        self.identity = identity
        self.connect_timeout = connect_timeout

    async def request(self, peer: Peer | str, link_text: str, timeout: float = 60.0) -> str:
        client = MqttClient(self.config, self.identity)
        await client.connect(self.connect_timeout)
        try:
            return await client.request(peer, link_text, timeout)
        finally:
            await client.close()


__all__ = ["MqttRequester"]
