"""Online/offline of the peers the page lists, from their retained MQTT status.

Each daemon publishes a retained `<prefix>/<node id>/status` ({"state": "online"|...},
"offline" as its last will). The web node reads the status of its peers on a separate,
clean connection; the broker's ACL must let it (the mqtt_broker role's `views`). No
MQTT, or no permission: the state is unknown (None), never guessed. The peer list is
read when the server starts."""

from __future__ import annotations

import json
import logging

from paho.mqtt.client import MQTTMessage

from ..config import MqttSection
from ..identity import Identity
from ..peers import Peer
from ..transports.mqtt import MqttClient, node_topic

log = logging.getLogger(__name__)


class Presence:
    def __init__(self, config: MqttSection, identity: Identity, peers: list[Peer]):
        self._topics = {node_topic(config.prefix, p.node_id, "status"): p.node_id for p in peers}
        self._state: dict[str, bool] = {}
        self.client = MqttClient(
            config, identity, subscriptions=list(self._topics), on_message=self._on_message
        )

    def online(self, node_id: str) -> bool | None:
        return self._state.get(node_id)

    def _on_message(self, message: MQTTMessage) -> None:
        node_id = self._topics.get(message.topic)
        if node_id is None:
            return
        try:
            state = json.loads(message.payload).get("state")
        except (ValueError, AttributeError):
            return
        if state in ("online", "offline"):
            self._state[node_id] = state == "online"

    async def start(self) -> None:
        await self.client.connect(wait=False)  # in the background: a broker away is not fatal

    async def stop(self) -> None:
        await self.client.close()


__all__ = ["Presence"]
