"""Home Assistant: MQTT discovery of the node as a device (`discovery`), the payload of
each entity (`entities`)."""

from .discovery import Features, HomeAssistantDiscovery
from .entities import EVENT_TYPES, VIEWER_EVENTS, DeviceInfo, Entities, Topics, object_id

__all__ = [
    "EVENT_TYPES",
    "VIEWER_EVENTS",
    "DeviceInfo",
    "Entities",
    "Features",
    "HomeAssistantDiscovery",
    "Topics",
    "object_id",
]
