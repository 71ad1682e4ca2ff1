"""MQTT transport (paho-mqtt 2.x, MQTT 5): links in and out through a broker.

Topics, all under `<prefix>/<node id>/` (docs/operations.md has payload examples):
  inbox          links to this node (QoS 1). The node keeps a persistent session
                 (clean_start=False + session expiry), so links published while it is
                 offline are delivered when it comes back.
  reply/<id>     replies to this node's own requests (response topic of its requests).
  cmd/call       a peer name or node id: this node calls that allowlisted peer;
                 {"peers": [A, B]}: it calls them all, the first to answer wins and
                 the others get a signed `cancelled`.
  status         retained JSON {"state": "online"|"offline", ...}; the last will is offline.
  events         JSON: call-started, call-ended, rejected. Never an underlay address.

- `client`: MqttClient (the paho adapter, request/reply correlation);
- `requester`: MqttRequester, the viewer's one-request connection;
- `server`: MqttTransport, the daemon side (worker pool, QoS 0 back-pressure,
  extensions such as Home Assistant discovery);
- `requests`: what the daemon does with one inbox or cmd/call message;
- `status`: the retained status and the scrubbed events;
- `messages`: topic names, JSON error replies."""

from __future__ import annotations

from .client import MqttClient
from .messages import error_payload, node_topic, parse_reply
from .requester import MqttRequester
from .server import MqttTransport

__all__ = ["MqttClient", "MqttRequester", "MqttTransport", "error_payload", "node_topic", "parse_reply"]
