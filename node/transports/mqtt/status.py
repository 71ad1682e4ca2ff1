"""What the node tells its broker about itself: the retained status (also its last
will) and the events stream. Events leave the device, so they are scrubbed of anything
that could name an address (defence in depth: calls never put one in)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, InitVar, dataclass, field

from ... import __version__
from ..base import Publish

log = logging.getLogger(__name__)

_ADDRESS_KEYS = {
    "addr",
    "address",
    "addresses",
    "local_address",
    "remote_address",
    "pair",
    "candidate",
    "candidates",
    "ip",
    "host",
    "sdp",
}


def scrub(event: Mapping[str, object]) -> dict[str, object]:
    """The event without any key that could carry an address (recursively)."""
    out: dict[str, object] = {}
    for key, value in event.items():
        if key in _ADDRESS_KEYS:
            continue
        out[key] = scrub(value) if isinstance(value, dict) else value
    return out


def status_payload(state: str, node_id: str, name: str, calls: int, source: str = "") -> bytes:
    """`source`: the camera's state (available | unavailable | none), when known."""
    status: dict[str, object] = {
        "state": state,
        "node_id": node_id,
        "name": name,
        "calls": calls,
        "version": __version__,
        "at": int(time.time()),
    }
    if source:
        status["source"] = source
    return json.dumps(status).encode()


@dataclass(eq=False, repr=False)
class NodeStatus:
    """Publishes `status` (retained) and `events` for one node."""

    publish: InitVar[Publish]
    _: KW_ONLY
    node_id: str
    name: str
    status_topic: str
    events_topic: str
    active_calls: Callable[[], int]
    source_state: Callable[[], str] | None = None  # the camera: available | unavailable | none
    _publish: Publish = field(init=False)

    def __post_init__(self, publish: Publish) -> None:
        self._publish = publish

    def will(self) -> tuple[str, bytes]:
        """The last will: offline, retained."""
        return self.status_topic, status_payload("offline", self.node_id, self.name, 0)

    def publish_status(self) -> None:
        """Retained: whoever subscribes later sees the current state at once."""
        try:
            calls = int(self.active_calls())
        except Exception:
            calls = 0
        try:
            source = self.source_state() if self.source_state is not None else ""
        except Exception:
            source = ""
        self._publish(
            self.status_topic,
            status_payload("online", self.node_id, self.name, calls, source),
            qos=1,
            retain=True,
        )

    def publish_health(self, topic: str, health: Mapping[str, object]) -> None:
        """Retained diagnostics (numbers and words only: node.diagnostics)."""
        try:
            self._publish(topic, json.dumps({**scrub(health), "at": int(time.time())}), qos=1, retain=True)
        except Exception:
            log.exception("MQTT: could not publish the health sample")

    def publish_event(self, event: Mapping[str, object]) -> None:
        """CallManager.on_event callback (and the transports' own rejections)."""
        try:
            payload = json.dumps({"node_id": self.node_id, **scrub(event)}, default=str)
            self._publish(self.events_topic, payload, qos=1)
            if event.get("event") in ("call-started", "call-ended", "source"):
                self.publish_status()
        except Exception:
            log.exception("MQTT: could not publish an event")


__all__ = ["NodeStatus", "scrub", "status_payload"]
