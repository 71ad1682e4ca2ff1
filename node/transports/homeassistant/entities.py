"""The discovery payloads, one builder per entity, in the shape Home Assistant's MQTT
discovery documents for each platform (button, binary_sensor, sensor, event, image):

- every payload has a `unique_id` (`<node id>_<object>`: stable across restarts, so HA
  keeps the entity, its name and history), the `device` and the `origin`;
- `device`: `identifiers`, the node's name, the board profile's title as `model` and its
  name as `model_id`, the board's own model string (device tree) as `hw_version`, the
  package version as `sw_version`. No `configuration_url`: the node serves no page;
- `origin`: `name`, `sw_version`, `support_url` (who published the discovery);
- availability from the node's retained status (its last will says offline);
- diagnostic entities carry `entity_category: diagnostic`.

The topics a payload names are all this node's own (status, health, events for HA,
snapshot, commands); no payload carries an address."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ... import __version__

SUPPORT_URL = "https://github.com/media-node/media-node"
_OBJECT_ID = re.compile(r"[^A-Za-z0-9_-]")

# The node's events as HA event types (the node's own names stay as they are: hyphens
# there, underscores here as HA's event types are written), plus the viewer's comings
# and goings, derived from view calls that connected and ended.
EVENT_TYPES = {
    "call-started": "call_started",
    "call-connected": "call_connected",
    "call-ended": "call_ended",
    "rejected": "rejected",
    "ring": "ring",
}
VIEWER_EVENTS = ("viewer_joined", "viewer_left")

Payload = dict[str, object]


def object_id(text: str) -> str:
    return _OBJECT_ID.sub("_", text)


@dataclass(frozen=True)
class DeviceInfo:
    """What HA shows on the device page (from the board profile and the machine)."""

    name: str
    model: str = "media-node"  # the board profile's title
    model_id: str = ""  # the board profile's name (pi4, generic-uvc, ...)
    hw_version: str = ""  # the device tree's model string, when the board has one


@dataclass(frozen=True)
class Topics:
    """This node's topics that entities read or write."""

    status: str
    health: str
    ha_event: str
    snapshot: str
    cmd_call: str
    cmd_ring: str
    cmd_snapshot: str


class Entities:
    def __init__(self, node_id: str, device: DeviceInfo, topics: Topics):
        self.node_id = node_id
        self.device = device
        self.topics = topics

    # --- the shared blocks ---------------------------------------------------------------

    def device_block(self) -> Payload:
        block: Payload = {
            "identifiers": [f"media-node-{self.node_id}"],
            "name": self.device.name,
            "manufacturer": "media-node",
            "model": self.device.model,
            "sw_version": __version__,
        }
        if self.device.model_id:
            block["model_id"] = self.device.model_id
        if self.device.hw_version:
            block["hw_version"] = self.device.hw_version
        return block

    @staticmethod
    def origin_block() -> Payload:
        return {"name": "media-node", "sw_version": __version__, "support_url": SUPPORT_URL}

    def _base(self, obj: str, name: str, *, diagnostic: bool = False, available: bool = True) -> Payload:
        out: Payload = {
            "name": name,
            "unique_id": f"{self.node_id}_{obj}",
            "device": self.device_block(),
            "origin": self.origin_block(),
        }
        if available:
            out.update(
                availability_topic=self.topics.status,
                availability_template="{{ value_json.state }}",
                payload_available="online",
                payload_not_available="offline",
            )
        if diagnostic:
            out["entity_category"] = "diagnostic"
        return out

    # --- buttons -------------------------------------------------------------------------

    def call_button(self, peer: str) -> Payload:
        return {
            **self._base(f"call_{object_id(peer)}", f"call {peer}"),
            "command_topic": self.topics.cmd_call,
            "payload_press": peer,
            "icon": "mdi:phone-outgoing",
        }

    def ring_button(self) -> Payload:
        return {
            **self._base("ring", "ring"),
            "command_topic": self.topics.cmd_ring,
            "payload_press": "ring",
            "icon": "mdi:bell-ring",
        }

    def snapshot_button(self) -> Payload:
        return {
            **self._base("take_snapshot", "take snapshot"),
            "command_topic": self.topics.cmd_snapshot,
            "payload_press": "snapshot",
            "icon": "mdi:camera",
        }

    # --- event and image -----------------------------------------------------------------

    def doorbell_event(self) -> Payload:
        return {
            **self._base("doorbell", "doorbell"),
            "state_topic": self.topics.ha_event,
            "event_types": [*EVENT_TYPES.values(), *VIEWER_EVENTS],
            "device_class": "doorbell",
            "icon": "mdi:doorbell",
        }

    def snapshot_image(self) -> Payload:
        return {
            **self._base("snapshot", "snapshot"),
            "image_topic": self.topics.snapshot,
            "content_type": "image/jpeg",
        }

    # --- sensors -------------------------------------------------------------------------

    def online(self) -> Payload:
        # Its state is the availability: it must stay readable when the node is offline.
        return {
            **self._base("online", "online", diagnostic=True, available=False),
            "device_class": "connectivity",
            "state_topic": self.topics.status,
            "value_template": "{{ value_json.state }}",
            "payload_on": "online",
            "payload_off": "offline",
        }

    def active_calls(self) -> Payload:
        return {
            **self._base("active_calls", "active calls"),
            "state_topic": self.topics.status,
            "value_template": "{{ value_json.calls }}",
            "state_class": "measurement",
            "icon": "mdi:phone-in-talk",
        }

    def _health(self, obj: str, name: str, field: str, **extra: object) -> Payload:
        return {
            **self._base(obj, name, diagnostic=True),
            "state_topic": self.topics.health,
            "value_template": f"{{{{ value_json.{field} }}}}",
            **extra,
        }

    def health_sensors(self) -> dict[str, tuple[str, Payload]]:
        """object id -> (component, payload) of every diagnostic read from `health`."""
        return {
            "source": (
                "sensor",
                self._health(
                    "source", "video source", "source", device_class="enum", options=["ok", "unavailable"]
                ),
            ),
            "viewers": (
                "sensor",
                self._health("viewers", "viewers", "viewers", state_class="measurement", icon="mdi:eye"),
            ),
            "bitrate": (
                "sensor",
                self._health(
                    "bitrate",
                    "video bitrate",
                    "bitrate",
                    device_class="data_rate",
                    unit_of_measurement="bit/s",
                    state_class="measurement",
                ),
            ),
            "soc_temperature": (
                "sensor",
                self._health(
                    "soc_temperature",
                    "SoC temperature",
                    "soc_temperature",
                    device_class="temperature",
                    unit_of_measurement="°C",
                    state_class="measurement",
                ),
            ),
            "uptime": (
                "sensor",
                self._health(
                    "uptime",
                    "uptime",
                    "uptime",
                    device_class="duration",
                    unit_of_measurement="s",
                    state_class="total_increasing",
                ),
            ),
            "throttled": (
                "binary_sensor",
                {
                    **self._base("throttled", "throttled", diagnostic=True),
                    "state_topic": self.topics.health,
                    # "None" is HA's payload for an unknown state (no vcgencmd on this board)
                    "value_template": (
                        "{% if value_json.throttled is none %}None"
                        "{% elif value_json.throttled %}ON{% else %}OFF{% endif %}"
                    ),
                    "device_class": "problem",
                    "json_attributes_topic": self.topics.health,
                    "json_attributes_template": "{{ {'throttling': value_json.throttling} | tojson }}",
                },
            ),
        }
