"""Home Assistant MQTT discovery (config `mqtt.home_assistant = true`): an extension of
the MQTT server that sees only its own subscriptions and a `publish` function.

It publishes retained configs under `<discovery_prefix>/<component>/<node id>/<object>/config`
(entities.py says what each one is) and re-publishes all of them whenever Home Assistant
announces itself on `<discovery_prefix>/status` with `online` (its birth message): a
broker that lost its retained messages gets them back the moment HA reconnects.
Retained configs of this node that it no longer announces (a peer that left the
allowlist, snapshots turned off) are removed with an empty retained message as soon as
the node sees them on its subscription.

It also turns the node's events into HA events on `<prefix>/<node id>/ha/event`
(`{"event_type": "ring", "source": "button"}`, `{"event_type": "viewer_joined",
"peer": "laptop"}`, ...): the attributes are the peer's *name*, the call kind and the
reason, never an address nor a node id."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from paho.mqtt.client import MQTTMessage

from ...peers import Peer, PeerStore
from ..base import Publish
from .entities import EVENT_TYPES, DeviceInfo, Entities, Payload, Topics, object_id

log = logging.getLogger(__name__)

# What an HA event may carry from a node event (names and words only).
EVENT_ATTRIBUTES = ("peer", "kind", "reason", "source", "calling")


@dataclass(frozen=True)
class Features:
    """Which of the node's optional parts HA should show."""

    snapshots: bool = False


class HomeAssistantDiscovery:
    def __init__(
        self,
        publish: Publish,
        *,
        node_id: str,
        device: DeviceInfo,
        topics: Topics,
        discovery_prefix: str,
        peers: PeerStore | None,
        features: Features = Features(),
    ):
        self._publish = publish
        self.node_id = node_id
        self.topics = topics
        self.peers = peers
        self.features = features
        self.prefix = discovery_prefix.strip("/")
        self.entities = Entities(node_id, device, topics)
        self.birth_topic = f"{self.prefix}/status"
        self._announced: set[str] = set()
        self._peers_stamp: int | None = None
        self._viewing: set[str] = set()  # view calls that connected (for viewer_left)
        self.announcements = 0
        # run after a re-announcement: the server re-publishes status and health with it
        self.on_birth: list[Callable[[], None]] = []

    # --- the MQTT extension interface ---------------------------------------------------

    def subscriptions(self) -> list[str]:
        return [self.birth_topic, f"{self.prefix}/+/{self.node_id}/+/config"]

    def owns(self, topic: str) -> bool:
        return topic.startswith(f"{self.prefix}/")

    def on_message(self, message: MQTTMessage) -> None:
        if message.topic == self.birth_topic:
            if (message.payload or b"").strip() == b"online":
                log.info("Home Assistant is online: announcing this node again")
                self.announce()
                for action in list(self.on_birth):
                    action()
            return
        # A retained config of ours from an earlier run: remove what is no longer announced.
        if message.payload and message.topic not in self.configs():
            self._remove(message.topic)

    def announce(self) -> None:
        """Publish every config (retained); remove the ones announced before and gone now."""
        self._peers_stamp = self._stamp()
        configs = self.configs()
        for topic in self._announced - set(configs):
            self._remove(topic)
        self._announced = set(configs)
        for topic, payload in configs.items():
            self._publish(topic, json.dumps(payload), qos=1, retain=True)
        self.announcements += 1

    def refresh_if_changed(self) -> None:
        """peers.toml may be edited while the node runs: re-announce when it changed."""
        if self._stamp() != self._peers_stamp:
            self.announce()

    def on_event(self, event: Mapping[str, object]) -> None:
        """A node event (calls, rejections, rings) as HA events (not retained: HA ignores
        retained events, a replay is not a new ring)."""
        for payload in self.ha_events(event):
            self._publish(self.topics.ha_event, json.dumps(payload), qos=1)

    # --- what is announced --------------------------------------------------------------

    def config_topic(self, component: str, obj: str) -> str:
        return f"{self.prefix}/{component}/{self.node_id}/{obj}/config"

    def callable_peers(self) -> list[Peer]:
        if self.peers is None:
            return []
        try:
            return [p for p in self.peers.load().values() if p.may("call")]
        except Exception as e:  # a broken peers.toml must not stop MQTT
            log.error("Home Assistant discovery: cannot read the allowlist: %s", e)
            return []

    def configs(self) -> dict[str, Payload]:
        """topic -> discovery payload, for everything this node announces."""
        e = self.entities
        out: dict[str, Payload] = {
            self.config_topic("binary_sensor", "online"): e.online(),
            self.config_topic("sensor", "active_calls"): e.active_calls(),
            self.config_topic("button", "ring"): e.ring_button(),
            self.config_topic("event", "doorbell"): e.doorbell_event(),
        }
        for obj, (component, payload) in e.health_sensors().items():
            out[self.config_topic(component, obj)] = payload
        if self.features.snapshots:
            out[self.config_topic("image", "snapshot")] = e.snapshot_image()
            out[self.config_topic("button", "take_snapshot")] = e.snapshot_button()
        for peer in self.callable_peers():
            out[self.config_topic("button", f"call_{object_id(peer.name)}")] = e.call_button(peer.name)
        return out

    def ha_events(self, event: Mapping[str, object]) -> list[Payload]:
        name = event.get("event")
        kind = event.get("kind")
        call = event.get("call")
        base = {k: event[k] for k in EVENT_ATTRIBUTES if k in event}
        out: list[Payload] = []
        if isinstance(name, str) and name in EVENT_TYPES:
            out.append({"event_type": EVENT_TYPES[name], **base})
        if kind == "view" and isinstance(call, str):
            peer = {"peer": event["peer"]} if "peer" in event else {}
            if name == "call-connected":
                self._viewing.add(call)
                out.append({"event_type": "viewer_joined", **peer})
            elif name == "call-ended" and call in self._viewing:
                self._viewing.discard(call)
                out.append({"event_type": "viewer_left", **peer})
        return out

    # --- helpers -------------------------------------------------------------------------

    def _stamp(self) -> int | None:
        try:
            return self.peers.path.stat().st_mtime_ns if self.peers is not None else None
        except OSError:
            return None

    def _remove(self, topic: str) -> None:
        log.info("Home Assistant discovery: removing %s (no longer announced)", topic)
        self._publish(topic, b"", qos=1, retain=True)
