"""The daemon's MQTT side: serves this node's inbox and cmd/call, publishes status and
events, and hosts extensions (Home Assistant discovery). It is also the client for the
node's own outgoing calls (`request`), through the MqttClient it is composed with.

A request's reply goes to its MQTT 5 response topic with its correlation data; without a
response topic an answer goes to the sender's inbox. Every message that is refused gets
an error reply {"ok": false, "reason", "message"} (when it named a response topic) and a
"rejected" event: nothing is dropped silently, and nothing a client sends stops the node."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from paho.mqtt.client import MQTTMessage, MQTTMessageInfo

from ...config import MqttSection
from ...identity import Identity
from ...peers import Peer, PeerStore
from .. import TRANSPORT_REASONS, Handler
from .client import CONNECT_TIMEOUT, MqttClient
from .commands import DoorbellCommands
from .messages import error_payload, node_topic
from .requests import MqttRequests
from .status import NodeStatus

if TYPE_CHECKING:
    from ...diagnostics import Diagnostics
    from ...doorbell import Doorbell
    from ...media.snapshot import Snapshotter
    from ..homeassistant import DeviceInfo, HomeAssistantDiscovery

log = logging.getLogger(__name__)

MAX_RESPONSE_TOPIC = 512
HANDLE_TIMEOUT = 90.0  # a link in hand longer than this is answered with a timeout error
QUEUE_PER_WORKER = 4  # QoS 0 messages waiting beyond workers * this are refused as busy
BUSY_REPORT_EVERY = 1.0  # seconds: busy refusals are logged and announced in batches
EXTENSION_REFRESH_EVERY = 30.0
HEALTH_EVERY = 30.0  # seconds between diagnostics samples on `health`

# on_call(peer, transport): cmd/call asks this node to call `peer`; its offer and the
# answer go through `transport` (this one). CallManager.call has this shape.
CallStarter = Callable[[Peer, "MqttTransport"], Awaitable[object]]


class MqttExtension(Protocol):
    """Something beside the node's own topics (Home Assistant discovery): it gets the
    messages on its subscriptions, and announces itself on every (re)connect."""

    def subscriptions(self) -> list[str]: ...
    def owns(self, topic: str) -> bool: ...
    def on_message(self, message: MQTTMessage) -> None: ...
    def announce(self) -> None: ...
    def refresh_if_changed(self) -> None: ...
    def on_event(self, event: Mapping[str, object]) -> None: ...


@dataclass
class NodeParts:
    """The optional parts of the node the MQTT side serves and announces (all None: a
    plain node with links, cmd/call, status and events)."""

    doorbell: Doorbell | None = None
    snapshots: Snapshotter | None = None
    snapshot_every: int = 0  # seconds between periodic snapshots (0: only when asked)
    snapshot_on_ring: bool = True
    diagnostics: Diagnostics | None = None
    device: DeviceInfo | None = None


class MqttTransport:
    def __init__(
        self,
        config: MqttSection,
        identity: Identity,
        handler: Handler,
        *,
        peers: PeerStore | None = None,
        on_call: CallStarter | None = None,
        on_call_first: Callable[[list[Peer], MqttTransport], Awaitable[object]] | None = None,
        name: str = "media-node",
        active_calls: Callable[[], int] | None = None,
        source_state: Callable[[], str] | None = None,
        workers: int = 4,
        handle_timeout: float = HANDLE_TIMEOUT,
        parts: NodeParts | None = None,
    ):
        self.config = config
        self.parts = parts or NodeParts()
        self.identity = identity
        self.node_id = identity.node_id
        self.name = name
        # Unbounded on purpose for QoS 1 (the broker's in-flight window bounds those: a
        # message is acked only once handled); QoS 0 bypasses that window, so it is
        # refused as busy once `queue_limit` messages wait.
        self._queue: asyncio.Queue[MQTTMessage] = asyncio.Queue()
        self.queue_limit = max(1, workers) * QUEUE_PER_WORKER
        self._busy_refused = 0
        self._busy_report: asyncio.TimerHandle | None = None
        self._workers_n = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self.status = NodeStatus(
            self.publish,
            node_id=self.node_id,
            name=name,
            status_topic=self.topic("status"),
            events_topic=self.topic("events"),
            active_calls=active_calls or (lambda: 0),
            source_state=source_state,
        )
        self.health_topic = self.topic("health")
        self.snapshot_topic = self.topic("snapshot")
        self.home_assistant: HomeAssistantDiscovery | None = None
        if config.home_assistant:
            self.home_assistant = self._home_assistant(peers)
        self.extensions: list[MqttExtension] = [self.home_assistant] if self.home_assistant else []
        self.client = MqttClient(
            config,
            identity,
            persistent=True,
            manual_ack=True,
            will=self.status.will(),
            reply_base=self.topic("reply"),
            subscriptions=[
                self.topic("inbox"),
                self.topic("cmd", "#"),
                *(t for ext in self.extensions for t in ext.subscriptions()),
            ],
            on_message=self._route,
            on_ready=self._on_ready,
        )
        self.requests = MqttRequests(
            prefix=config.prefix,
            node_id=self.node_id,
            handler=handler,
            handle_timeout=handle_timeout,
            peers=peers,
            # "call this peer, through me": outgoing calls go through the broker too
            on_call=(lambda peer: on_call(peer, self)) if on_call is not None else None,
            on_call_first=(lambda peers: on_call_first(peers, self)) if on_call_first is not None else None,
            publish=self.publish,
            publish_event=self.publish_event,
            take_inbox_answer=self.client.take_inbox_answer,
            controllers=frozenset(self.controllers(config)),
        )
        self.counts = self.requests.counts
        self.commands = DoorbellCommands(
            self.requests,
            doorbell=self.parts.doorbell,
            snapshots=self.parts.snapshots,
            publish=self.publish,
            snapshot_topic=self.snapshot_topic,
        )
        self.requests.commands = self.commands
        bell = self.parts.doorbell
        if bell is not None:  # rings go out as events; a snapshot follows them if asked
            bell.on_event(self.publish_event)
            if self.parts.snapshots is not None and self.parts.snapshot_on_ring:
                bell.on_ring(self.commands.on_ring)

    def _home_assistant(self, peers: PeerStore | None) -> HomeAssistantDiscovery:
        from ..homeassistant import DeviceInfo, Features, HomeAssistantDiscovery, Topics

        ha = HomeAssistantDiscovery(
            self.publish,
            node_id=self.node_id,
            device=self.parts.device or DeviceInfo(self.name),
            topics=Topics(
                status=self.topic("status"),
                health=self.health_topic,
                ha_event=self.topic("ha", "event"),
                snapshot=self.snapshot_topic,
                # Home Assistant's commands on the topics its user alone may write
                cmd_call=self.topic("cmd", "call", self.config.home_assistant_user),
                cmd_ring=self.topic("cmd", "ring", self.config.home_assistant_user),
                cmd_snapshot=self.topic("cmd", "snapshot", self.config.home_assistant_user),
            ),
            discovery_prefix=self.config.discovery_prefix,
            peers=peers,
            features=Features(snapshots=self.parts.snapshots is not None),
        )
        # HA came back: it also needs the current states, not only the configs.
        ha.on_birth.append(self.status.publish_status)
        ha.on_birth.append(self.publish_health)
        return ha

    @staticmethod
    def controllers(config: MqttSection) -> set[str]:
        """Whose commands this node takes: the configured controllers, and Home
        Assistant's user when discovery is on (its buttons publish as that user)."""
        names = set(config.controllers)
        if config.home_assistant and config.home_assistant_user:
            names.add(config.home_assistant_user)
        return names

    # --- the connection (the composed client) --------------------------------------------

    def topic(self, *parts: str, node_id: str | None = None) -> str:
        return node_topic(self.config.prefix, node_id or self.node_id, *parts)

    @property
    def connected(self) -> bool:
        return self.client.connected

    def publish(self, topic: str, payload: bytes | str, **options: Any) -> MQTTMessageInfo:
        """MqttClient.publish (qos, retain, properties): the parts made before the client
        are handed this."""
        return self.client.publish(topic, payload, **options)

    async def request(self, peer: Peer | str, link_text: str, timeout: float = 60.0) -> str:
        """The node's own outgoing calls go through the broker (ClientTransport)."""
        return await self.client.request(peer, link_text, timeout)

    def publish_event(self, event: Mapping[str, object]) -> None:
        """CallManager.on_event callback (and the transports' own rejections, rings)."""
        self.status.publish_event(event)
        for ext in self.extensions:
            try:
                ext.on_event(event)
            except Exception:
                log.exception("MQTT: %s failed on an event", type(ext).__name__)
        if event.get("event") in ("call-started", "call-ended"):
            self.publish_health()  # viewers changed

    def publish_health(self) -> None:
        if self.parts.diagnostics is not None and self.connected:
            self.status.publish_health(self.health_topic, self.parts.diagnostics.sample().as_dict())

    def publish_status(self) -> None:
        self.status.publish_status()

    # --- life cycle ----------------------------------------------------------------------

    async def start(self, *, wait: bool = False, timeout: float = CONNECT_TIMEOUT) -> None:
        """Connect (retrying with backoff in the background) and serve. With `wait`,
        return once connected (TransportError after `timeout`)."""
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"mqtt-worker-{i}") for i in range(self._workers_n)
        ]
        if self.extensions:
            self._tasks.append(asyncio.create_task(self._refresh_extensions(), name="mqtt-ext-refresh"))
        if self.parts.diagnostics is not None:
            self._tasks.append(asyncio.create_task(self._health_loop(), name="mqtt-health"))
        if self.parts.snapshots is not None and self.parts.snapshot_every > 0:
            self._tasks.append(asyncio.create_task(self._snapshot_loop(), name="mqtt-snapshots"))
        await self.client.connect(timeout, wait=wait)

    async def stop(self) -> None:
        if self._busy_report is not None:
            self._busy_report.cancel()
            self._report_busy()
        if self.connected:
            topic, offline = self.status.will()
            info = self.publish(topic, offline, qos=1, retain=True)
            try:
                await asyncio.to_thread(info.wait_for_publish, 2.0)
            except (RuntimeError, ValueError):
                pass
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.client.close()

    async def __aenter__(self) -> MqttTransport:
        await self.start(wait=True)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def healthy(self) -> bool:
        """For the service watchdog: the workers run (a broker that is down is not the
        node's illness: paho keeps reconnecting, and a restart would not help)."""
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    async def drained(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._busy or not self._queue.empty():
            if time.monotonic() > deadline:
                raise TimeoutError(f"MQTT transport not drained after {timeout} s")
            await asyncio.sleep(0.05)

    def _on_ready(self) -> None:
        self.status.publish_status()
        self.publish_health()
        for ext in self.extensions:
            ext.announce()

    async def _health_loop(self, every: float = HEALTH_EVERY) -> None:
        diagnostics = self.parts.diagnostics
        assert diagnostics is not None
        while True:
            try:
                await asyncio.to_thread(diagnostics.refresh)  # vcgencmd: off the event loop
                self.publish_health()
            except Exception:
                log.exception("MQTT: the health sample failed")
            await asyncio.sleep(every)

    async def _snapshot_loop(self) -> None:
        from ...media.snapshot import SnapshotError

        while True:
            await asyncio.sleep(self.parts.snapshot_every)
            if self.connected:
                try:
                    await self.commands.take_and_publish("every")
                except SnapshotError:
                    pass  # logged; the next one may work

    async def _refresh_extensions(self, every: float = EXTENSION_REFRESH_EVERY) -> None:
        while True:
            await asyncio.sleep(every)
            if self.connected:
                for ext in self.extensions:
                    try:
                        ext.refresh_if_changed()
                    except Exception:
                        log.exception("MQTT: refreshing %s failed", type(ext).__name__)

    # --- routing -------------------------------------------------------------------------

    def _route(self, message: MQTTMessage) -> None:
        topic = message.topic
        if self.client.is_reply(topic):
            self.client.ack(message)  # handled right here
            if not self.client.take_reply(message):
                self.requests.refuse(message, "bad-request", "a reply that no request of this node waits for")
            return
        for ext in self.extensions:
            if ext.owns(topic):
                self.client.ack(message)
                ext.on_message(message)
                return
        if getattr(message, "qos", 1) == 0 and self._queue.qsize() >= self.queue_limit:
            self._refuse_busy(message)
            return
        self._queue.put_nowait(message)

    def _refuse_busy(self, message: MQTTMessage) -> None:
        """A QoS 0 message while the queue is full: an error reply (if it named a response
        topic) at once; the log line and the 'rejected' event come once per
        BUSY_REPORT_EVERY with a count, so a flood cannot flood the log and events too."""
        self.counts["rejected"] += 1
        self.requests.reply(message, error_payload("busy", TRANSPORT_REASONS["busy"]))
        self._busy_refused += 1
        if self._busy_report is None:
            self._busy_report = asyncio.get_running_loop().call_later(BUSY_REPORT_EVERY, self._report_busy)

    def _report_busy(self) -> None:
        count, self._busy_refused, self._busy_report = self._busy_refused, 0, None
        if not count:
            return
        log.warning("MQTT: refused %d QoS 0 message(s): busy (%d waiting)", count, self._queue.qsize())
        self.publish_event(
            {
                "event": "rejected",
                "transport": "mqtt",
                "reason": "busy",
                "message": TRANSPORT_REASONS["busy"],
                "count": count,
            }
        )

    async def _worker(self) -> None:
        while True:
            message = await self._queue.get()
            self._busy += 1
            try:
                await self.requests.serve(message)
            except asyncio.CancelledError:
                raise  # stopping: not acknowledged, so the broker delivers it again
            except Exception as e:  # a bug must cost one message, never the transport
                log.exception("MQTT: failed serving a message on %s", message.topic)
                self.requests.refuse(message, "handler-error", f"{type(e).__name__}")
            finally:
                self._busy -= 1
            self.client.ack(message)


__all__ = ["CallStarter", "MqttExtension", "MqttTransport", "NodeParts"]
