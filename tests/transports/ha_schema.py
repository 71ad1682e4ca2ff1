"""Home Assistant's MQTT discovery schema, as HA documents it for the platforms the node
uses (written from HA's MQTT integration docs and its platform schemas: button,
binary_sensor, sensor, event, image; the shared entity, device, origin and availability
options). `problems(component, payload)` lists what HA would refuse or silently drop:
a missing required option, an option the platform does not know (HA removes unknown
keys without a word, so a typo would vanish), a bad combination."""

from __future__ import annotations

COMMON = {
    # entity options every MQTT platform takes
    "name",
    "unique_id",
    "object_id",
    "default_entity_id",
    "device",
    "origin",
    "entity_category",
    "entity_picture",
    "enabled_by_default",
    "icon",
    "json_attributes_topic",
    "json_attributes_template",
    "qos",
    "encoding",
    # availability
    "availability_topic",
    "availability_template",
    "payload_available",
    "payload_not_available",
    "availability",
    "availability_mode",
}

PLATFORMS: dict[str, dict[str, set[str]]] = {
    "button": {
        "required": {"command_topic"},
        "optional": {"command_template", "device_class", "payload_press", "retain"},
    },
    "binary_sensor": {
        "required": {"state_topic"},
        "optional": {
            "value_template",
            "device_class",
            "expire_after",
            "force_update",
            "off_delay",
            "payload_on",
            "payload_off",
        },
    },
    "sensor": {
        "required": {"state_topic"},
        "optional": {
            "value_template",
            "device_class",
            "expire_after",
            "force_update",
            "last_reset_value_template",
            "options",
            "suggested_display_precision",
            "state_class",
            "unit_of_measurement",
        },
    },
    "event": {
        "required": {"state_topic", "event_types"},
        "optional": {"value_template", "device_class"},
    },
    "image": {
        "required": set(),  # exactly one of image_topic / url_topic (checked below)
        "optional": {"image_topic", "url_topic", "content_type", "image_encoding", "url_template"},
    },
}

DEVICE_KEYS = {
    "identifiers",
    "connections",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "hw_version",
    "serial_number",
    "sw_version",
    "via_device",
    "suggested_area",
    "configuration_url",
}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
DEVICE_CLASSES = {
    "event": {"button", "doorbell", "motion"},
    "binary_sensor": {"connectivity", "problem", "running", "update", "safety", "motion", "occupancy"},
    "sensor": {"enum", "data_rate", "temperature", "duration", "timestamp"},
}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
UNITS = {"data_rate": {"bit/s", "kbit/s", "Mbit/s"}, "temperature": {"°C", "°F", "K"}, "duration": {"s"}}


def problems(component: str, payload: dict) -> list[str]:
    out: list[str] = []
    spec = PLATFORMS.get(component)
    if spec is None:
        return [f"{component} is not a platform the node should use"]
    missing = spec["required"] - set(payload)
    if missing:
        out.append(f"missing required {sorted(missing)}")
    unknown = set(payload) - COMMON - spec["required"] - spec["optional"]
    if unknown:
        out.append(f"options HA's {component} schema does not know (dropped silently): {sorted(unknown)}")
    device = payload.get("device")
    if not isinstance(device, dict) or not (device.get("identifiers") or device.get("connections")):
        out.append("device needs identifiers or connections")
    elif set(device) - DEVICE_KEYS:
        out.append(f"unknown device keys {sorted(set(device) - DEVICE_KEYS)}")
    origin = payload.get("origin")
    if not isinstance(origin, dict) or not isinstance(origin.get("name"), str):
        out.append("origin needs a name")
    elif set(origin) - ORIGIN_KEYS:
        out.append(f"unknown origin keys {sorted(set(origin) - ORIGIN_KEYS)}")
    if payload.get("entity_category") not in (None, "config", "diagnostic"):
        out.append(f"entity_category {payload['entity_category']!r}")
    if component in ("sensor", "binary_sensor") and payload.get("entity_category") == "config":
        out.append("a sensor cannot be a config entity")
    dc = payload.get("device_class")
    if dc is not None and dc not in DEVICE_CLASSES.get(component, set()):
        out.append(f"device_class {dc!r} for {component}")
    if component == "sensor":
        sc = payload.get("state_class")
        if sc is not None and sc not in STATE_CLASSES:
            out.append(f"state_class {sc!r}")
        if "options" in payload and (dc != "enum" or sc or "unit_of_measurement" in payload):
            out.append("options only for device_class enum, without state_class or unit")
        unit = payload.get("unit_of_measurement")
        if dc in UNITS and unit not in UNITS[dc]:
            out.append(f"unit {unit!r} for device_class {dc}")
    if component == "event" and not (
        isinstance(payload.get("event_types"), list)
        and payload["event_types"]
        and all(isinstance(t, str) for t in payload["event_types"])
    ):
        out.append("event_types must be a non-empty list of strings")
    if component == "image":
        topics = [k for k in ("image_topic", "url_topic") if k in payload]
        if len(topics) != 1:
            out.append(f"image needs exactly one of image_topic/url_topic, has {topics}")
        if "content_type" in payload and "url_topic" in payload:
            out.append("content_type cannot go with url_topic")
    if "availability_topic" in payload and "availability" in payload:
        out.append("availability_topic and availability are exclusive")
    return out
