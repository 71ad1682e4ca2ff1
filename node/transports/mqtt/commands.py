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
from ...doorbell.errors import DoorbellError
from ...media.snapshot import Snapshot, SnapshotError, Snapshotter
from .requests import MqttRequests

log = logging.getLogger(__name__)


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
        self._last_published: Snapshot | None = None

    async def serve(self, message: MQTTMessage, command: str) -> None:
        if command == "ring":
            self._ring(message)
        else:
            await self._snapshot(message)

    def _ring(self, message: MQTTMessage) -> None:
        if self.doorbell is None:
            self._refuse(message, DoorbellError(reason="no-doorbell"))
            return
        ring = self.doorbell.ring("mqtt")
        if not ring.rang:
            self._refuse(message, DoorbellError(reason="too-soon"), seconds_ago=ring.held_off)
            return
        self.requests.counts["handled"] += 1
        reply = {"ok": True, "calling": list(ring.calling), "skipped": ring.skipped}
        self.requests.reply(message, json.dumps(reply).encode())

    async def _snapshot(self, message: MQTTMessage) -> None:
        try:
            snap = await self.take_and_publish("cmd/snapshot")
        except SnapshotError as e:
            self._refuse(message, e)
            return
        self.requests.counts["handled"] += 1
        self.requests.reply(message, json.dumps({"ok": True, **snap.describe()}).encode())

    async def take_and_publish(self, why: str) -> Snapshot:
        """Take (or reuse, within min_interval) a snapshot and publish it for Home Assistant."""
        if self.snapshots is None:
            raise SnapshotError("snapshots-off")
        try:
            snap = await self.snapshots.take()
        except SnapshotError as e:
            log.warning("snapshot (%s) failed: %s", why, e)
            raise
        if snap is not self._last_published:  # the same picture again (min_interval): sent once
            # QoS 0, not retained: the broker neither keeps the picture for later
            # subscribers nor queues it (on disk, with persistence) for an offline controller.
            self.publish(self.snapshot_topic, snap.jpeg, qos=0)
            self._last_published = snap
            self.published += 1
        return snap

    def _refuse(self, message: MQTTMessage, error: DoorbellError | SnapshotError, **extra: object) -> None:
        """The error's fixed public text, never its detail (which stays in the log)."""
        self.requests.refuse(message, error.public_reason, error.public, **extra)

    async def on_ring(self) -> None:
        """The doorbell's on-ring action when [snapshot] on_ring: failures are logged only."""
        try:
            await self.take_and_publish("ring")
        except SnapshotError:
            pass


__all__ = ["DoorbellCommands"]
