"""Home Assistant MQTT discovery (config `mqtt.home_assistant = true`).

Publishes retained discovery configs under `<discovery_prefix>/<component>/<node id>/…`:
  button/<node id>/call_<peer>/config         one "call <peer>" button per peer allowed 'call';
                                              pressing it publishes the peer's name to cmd/call
  binary_sensor/<node id>/online/config       online/offline from the retained status
  sensor/<node id>/active_calls/config        the number of calls, from the same status
All three use the status topic for availability, so HA greys them out when the node's
last will says offline. Buttons of peers that left the allowlist are removed (an empty
retained config) when the node sees their old retained config on its subscription."""

from __future__ import annotations

import json
import logging
import re

from paho.mqtt.client import MQTTMessage

from .. import __version__
from ..peers import Peer, PeerStore
from .base import Publish

log = logging.getLogger(__name__)

_OBJECT_ID = re.compile(r"[^A-Za-z0-9_-]")


def object_id(peer_name: str) -> str:
    return "call_" + _OBJECT_ID.sub("_", peer_name)


class HomeAssistantDiscovery:
    """An extension of the MQTT server: it sees only what it subscribed to and a
    `publish` function, never the transport itself."""

    def __init__(
        self,
        publish: Publish,
        *,
        node_id: str,
        name: str,
        status_topic: str,
        command_topic: str,
        discovery_prefix: str,
        peers: PeerStore | None,
    ):
        self._publish = publish
        self.peers = peers
        self.node_id = node_id
        self.name = name
        self.status_topic = status_topic
        self.command_topic = command_topic
        self.prefix = discovery_prefix.strip("/")
        self._buttons: set[str] = set()
        self._peers_stamp: int | None = None

    def _config_topic(self, component: str, obj: str) -> str:
        return f"{self.prefix}/{component}/{self.node_id}/{obj}/config"

    def subscriptions(self) -> list[str]:
        return [f"{self.prefix}/button/{self.node_id}/+/config"]

    def owns(self, topic: str) -> bool:
        return topic.startswith(f"{self.prefix}/")

    def _device(self) -> dict[str, object]:
        return {
            "identifiers": [f"media-node-{self.node_id}"],
            "name": self.name,
            "manufacturer": "media-node",
            "model": "media-node",
            "sw_version": __version__,
        }

    def _common(self) -> dict[str, object]:
        status = self.status_topic
        return {
            "device": self._device(),
            "availability_topic": status,
            "availability_template": "{{ value_json.state }}",
            "payload_available": "online",
            "payload_not_available": "offline",
        }

    def callable_peers(self) -> list[Peer]:
        if self.peers is None:
            return []
        try:
            return [p for p in self.peers.load().values() if p.may("call")]
        except Exception as e:  # a broken peers.toml must not stop MQTT
            log.error("Home Assistant discovery: cannot read the allowlist: %s", e)
            return []

    def configs(self) -> dict[str, dict[str, object]]:
        """topic -> discovery payload, for everything this node announces."""
        status = self.status_topic
        out: dict[str, dict[str, object]] = {
            self._config_topic("binary_sensor", "online"): {
                "name": "online",
                "unique_id": f"{self.node_id}_online",
                "device_class": "connectivity",
                "state_topic": status,
                "value_template": "{{ value_json.state }}",
                "payload_on": "online",
                "payload_off": "offline",
                "device": self._device(),
            },
            self._config_topic("sensor", "active_calls"): {
                "name": "active calls",
                "unique_id": f"{self.node_id}_active_calls",
                "state_topic": status,
                "value_template": "{{ value_json.calls }}",
                "state_class": "measurement",
                "icon": "mdi:phone-in-talk",
                **self._common(),
            },
        }
        for peer in self.callable_peers():
            obj = object_id(peer.name)
            out[self._config_topic("button", obj)] = {
                "name": f"call {peer.name}",
                "unique_id": f"{self.node_id}_{obj}",
                "command_topic": self.command_topic,
                "payload_press": peer.name,
                "icon": "mdi:phone-outgoing",
                **self._common(),
            }
        return out

    def announce(self) -> None:
        """Announce everything; remove the buttons of peers that are no longer callable."""
        self._peers_stamp = self._stamp()
        configs = self.configs()
        buttons = {t for t in configs if f"/button/{self.node_id}/" in t}
        for topic in self._buttons - buttons:
            self._remove(topic)
        self._buttons = buttons
        for topic, payload in configs.items():
            self._publish(topic, json.dumps(payload), qos=1, retain=True)

    def _stamp(self) -> int | None:
        try:
            return self.peers.path.stat().st_mtime_ns if self.peers is not None else None
        except OSError:
            return None

    def refresh_if_changed(self) -> None:
        """peers.toml may be edited while the node runs: re-announce when it changed."""
        if self._stamp() != self._peers_stamp:
            self.announce()

    def _remove(self, topic: str) -> None:
        log.info("Home Assistant discovery: removing %s (peer no longer callable)", topic)
        self._publish(topic, b"", qos=1, retain=True)

    def on_message(self, message: MQTTMessage) -> None:
        """A retained button config seen on our subscription (left by an earlier run):
        remove it if its peer is no longer callable."""
        if (
            message.payload
            and f"/button/{self.node_id}/" in message.topic
            and message.topic not in self.configs()
        ):
            self._remove(message.topic)
