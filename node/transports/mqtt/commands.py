"""The doorbell's commands over MQTT, beside cmd/call and under the same rules: who may
publish them is the broker's ACL (controllers: Home Assistant, a Zigbee button's
automation), every refusal gets an error reply and a "rejected" event, and what leaves
is a fixed text per reason.

  cmd/ring       ring the doorbell (any payload): the `ring` event, the snapshot if
                 configured, calls to the peers in [doorbell] call (each allowed `call`).
                 Reply {"ok": true, "calling": [...], "skipped": {...}}.
  cmd/snapshot   take a snapshot now (within [snapshot] min_interval: the last one
                 again) and publish it to `snapshot`; reply {"ok": true, "bytes", "width",
                 "height", "at"}. Refused with `snapshots-off` unless [snapshot] enabled.

The JPEG goes to `<prefix>/<node id>/snapshot` at QoS 0 and not retained (a picture is
not left on the broker, nor queued for anyone offline); the ACL lets only controllers
read it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from paho.mqtt.client import MQTTMessage

from ...doorbell import Doorbell
from ...media.snapshot import Snapshot, SnapshotError, Snapshotter
from .requests import MqttRequests

log = logging.getLogger(__name__)

# Fixed texts for what leaves the node (a snapshot error's own text stays in the log).
SNAPSHOT_REASONS = {
    "snapshots-off": "snapshots are off on this node ([snapshot] enabled = false in its config)",
    "unavailable": "the camera gave no picture in time; see the node's log",
    "decode-failed": "the camera's keyframe could not be decoded; see the node's log",
    "too-large": "the picture does not fit the node's [snapshot] max_bytes; see its log",
}
RING_REASONS = {"too-soon": "the doorbell rang moments ago ([doorbell] hold_off)"}


class DoorbellCommands:
    def __init__(
        self,
        requests: MqttRequests,
        *,
        doorbell: Doorbell | None,
        snapshots: Snapshotter | None,
        publish: Callable[..., object],
        snapshot_topic: str,
    ):
        self.requests = requests
        self.doorbell = doorbell
        self.snapshots = snapshots
        self.publish = publish
        self.snapshot_topic = snapshot_topic
        self.published = 0

    async def serve(self, message: MQTTMessage, command: str) -> None:
        if command == "ring":
            self._ring(message)
        else:
            await self._snapshot(message)

    def _ring(self, message: MQTTMessage) -> None:
        if self.doorbell is None:
            self.requests.refuse(message, "bad-request", "this node has no doorbell")
            return
        ring = self.doorbell.ring("mqtt")
        if not ring.rang:
            self.requests.refuse(message, "too-soon", RING_REASONS["too-soon"], seconds_ago=ring.held_off)
            return
        self.requests.counts["handled"] += 1
        reply = {"ok": True, "calling": list(ring.calling), "skipped": ring.skipped}
        self.requests.reply(message, json.dumps(reply).encode())

    async def _snapshot(self, message: MQTTMessage) -> None:
        if self.snapshots is None:
            self.requests.refuse(message, "snapshots-off", SNAPSHOT_REASONS["snapshots-off"])
            return
        try:
            snap = await self.take_and_publish("cmd/snapshot")
        except SnapshotError as e:
            self.requests.refuse(message, e.reason, SNAPSHOT_REASONS.get(e.reason, e.reason))
            return
        self.requests.counts["handled"] += 1
        self.requests.reply(message, json.dumps({"ok": True, **snap.describe()}).encode())

    async def take_and_publish(self, why: str) -> Snapshot:
        """Take (or reuse, within min_interval) a snapshot and publish it for Home Assistant."""
        if self.snapshots is None:
            raise SnapshotError("snapshots-off", SNAPSHOT_REASONS["snapshots-off"])
        try:
            snap = await self.snapshots.take()
        except SnapshotError as e:
            log.warning("snapshot (%s) failed: %s", why, e)
            raise
        # QoS 0, not retained: the broker neither keeps the picture for later subscribers
        # nor queues it (on disk, with persistence) for a controller that is offline.
        self.publish(self.snapshot_topic, snap.jpeg, qos=0)
        self.published += 1
        return snap

    async def on_ring(self) -> None:
        """The doorbell's on-ring action when [snapshot] on_ring: failures are logged only."""
        try:
            await self.take_and_publish("ring")
        except SnapshotError:
            pass


__all__ = ["RING_REASONS", "SNAPSHOT_REASONS", "DoorbellCommands"]
