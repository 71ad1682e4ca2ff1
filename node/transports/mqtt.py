"""MQTT transport (paho-mqtt 2.x, MQTT 5): links in and out through a broker.

Topics, all under `<prefix>/<node id>/` (docs/operations.md has payload examples):
  inbox          links to this node (QoS 1). The node keeps a persistent session
                 (clean_start=False + session expiry), so links published while it is
                 offline are delivered when it comes back.
  reply/<id>     replies to this node's own requests (response topic of its requests).
  cmd/call       a peer name or node id: this node calls that allowlisted peer.
  status         retained JSON {"state": "online"|"offline", ...}; the last will is offline.
  events         JSON: call-started, call-ended, rejected. Never an underlay address.

A request's reply goes to its MQTT 5 response topic with its correlation data; without a
response topic an answer goes to the sender's inbox. Every message that is refused gets
an error reply {"ok": false, "reason", "message"} (when it named a response topic) and a
"rejected" event: nothing is dropped silently, and nothing a client sends stops the node.

paho runs its network loop (with reconnect and backoff) on its own thread; every callback
only hands the message to the asyncio loop, where all the work happens."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .. import __version__
from ..config import MqttSection
from ..errors import NodeError
from ..identity import Identity
from ..links.errors import LinkError
from ..links.jws import CompactJws, jws_digest
from ..links.link import MAX_LINK_BYTES, PREFIX, SEALED_PREFIX, LinkOpener
from ..links.payload import decode_payload
from ..peers import Peer, PeerStore
from . import TRANSPORT_REASONS, Handler, TransportError, public_error

log = logging.getLogger(__name__)

MAX_RESPONSE_TOPIC = 512
HANDLE_TIMEOUT = 90.0  # a link in hand longer than this is answered with a timeout error
CONNECT_TIMEOUT = 15.0
QUEUE_PER_WORKER = 4  # QoS 0 messages waiting beyond workers * this are refused as busy
BUSY_REPORT_EVERY = 1.0  # seconds: busy refusals are logged and announced in batches

CallStarter = Callable[[Peer], Awaitable[Any]]  # e.g. lambda peer: manager.call(peer, transport)


def node_topic(prefix: str, node_id: str, *parts: str) -> str:
    return "/".join([prefix.strip("/"), node_id, *parts])


def error_payload(reason: str, message: str, **extra) -> bytes:
    return json.dumps({"ok": False, "reason": reason, "message": message, **extra}).encode()


def parse_reply(payload: bytes) -> str:
    """A reply message: a link text, or a JSON error turned into TransportError."""
    text = payload.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise TransportError("bad-request", "the reply is neither a link nor JSON") from None
        if isinstance(data, dict) and data.get("ok") is False:
            raise TransportError(str(data.get("reason", "error")), str(data.get("message", "")))
        return text
    return text


def peek_claims(text: str):
    """The claims of an unsealed link without verifying it (routing only, never trust)."""
    try:
        text = text.strip()
        if text.startswith(SEALED_PREFIX):
            return None
        jws = text.removeprefix(PREFIX)
        return decode_payload(CompactJws(jws).payload), jws_digest(jws)
    except Exception:
        return None


def read_password(path: str) -> str:
    p = Path(path)
    try:
        mode = p.stat().st_mode
        password = p.read_text().strip()
    except OSError as e:
        raise NodeError(f"mqtt.password_file {path}: {e.strerror}") from None
    if mode & 0o004:
        log.warning("mqtt.password_file %s is readable by everyone; chmod 0600 it", path)
    if not password:
        raise NodeError(f"mqtt.password_file {path} is empty")
    return password


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


def _scrub(event: dict) -> dict:
    """Defence in depth: events leave the device, addresses never do (privacy: no underlay address leaves the node)."""
    out = {}
    for key, value in event.items():
        if key in _ADDRESS_KEYS:
            continue
        out[key] = _scrub(value) if isinstance(value, dict) else value
    return out


@dataclass
class _Pending:
    future: asyncio.Future
    digest: str | None
    peer_id: str = ""


class MqttClient:
    """A connection to the broker that can send a link and wait for its reply (the
    viewer's `--via mqtt`, and the daemon's outgoing calls). `persistent` keeps the
    session across disconnects (the daemon); a client is otherwise clean."""

    def __init__(
        self,
        config: MqttSection,
        identity: Identity,
        *,
        persistent: bool = False,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
        manual_ack: bool = False,
    ):
        self.config = config
        self.identity = identity
        self.node_id = identity.node_id
        self.persistent = persistent
        self.client_id = client_id or (
            f"mnode-{self.node_id}" if persistent else f"mnode-{self.node_id[:20]}-{uuid.uuid4().hex[:8]}"
        )
        self.session = uuid.uuid4().hex[:12]
        self.reply_base = self.topic("reply", self.session)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[bytes, _Pending] = {}
        self._connected = asyncio.Event()
        self._refused = asyncio.Event()  # the broker said no (credentials, ACL): clients give up
        self._subscribe_mid = -1
        self._session_present = False
        self._ever_connected = False
        self.last_error = ""
        self._will = will
        self._manual_ack = manual_ack
        self._client = self._make_client()

    def topic(self, *parts: str, node_id: str | None = None) -> str:
        return node_topic(self.config.prefix, node_id or self.node_id, *parts)

    # --- connection --------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=True,
            manual_ack=self._manual_ack,
        )
        username = self.config.username or self.node_id
        password = read_password(self.config.password_file) if self.config.password_file else None
        c.username_pw_set(username, password)
        if self.config.tls:
            ctx = ssl.create_default_context(cafile=self.config.ca_file or None)
            if self.config.cert_file:
                ctx.load_cert_chain(self.config.cert_file, self.config.key_file or None)
            c.tls_set_context(ctx)
        c.reconnect_delay_set(
            self.config.reconnect_min, max(self.config.reconnect_min, self.config.reconnect_max)
        )
        if self._will:
            c.will_set(self._will[0], self._will[1], qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        return c

    async def connect(self, timeout: float = CONNECT_TIMEOUT, *, wait: bool = True) -> None:
        """Start the network loop; with `wait`, return once the broker accepted us (raise
        TransportError naming the broker's refusal otherwise)."""
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry if self.persistent else 0
        self._client.connect_async(
            self.config.host,
            self.config.port,
            self.config.keepalive,
            clean_start=not self.persistent,
            properties=props,
        )
        self._client.loop_start()
        if not wait:
            return
        outcome = [asyncio.ensure_future(self._connected.wait()), asyncio.ensure_future(self._refused.wait())]
        try:
            await asyncio.wait(outcome, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in outcome:
                f.cancel()
        if not self._connected.is_set():
            await self.close()
            why = self.last_error or "no answer (is the broker running, and TLS/port right?)"
            raise TransportError(
                "unreachable", f"MQTT broker {self.config.host}:{self.config.port}: {why}"
            ) from None

    async def close(self) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(TransportError("unreachable", "the MQTT connection closed"))
        self._pending.clear()
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # paho's thread: hand everything to the loop.
    def _call_soon(self, fn, *args) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:
                pass

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"the broker refused the connection: {reason_code}"
            log.error("MQTT %s:%s: %s", self.config.host, self.config.port, self.last_error)
            self._call_soon(self._refused.set)
            return
        # Subscribing here (paho's thread) re-subscribes on every reconnect (a persistent
        # session keeps subscriptions, a broker that lost its state does not). The
        # connection counts as ready only once the SUBACK is in: from then on nothing
        # published to us can be missed.
        self._session_present = bool(getattr(flags, "session_present", False))
        _, self._subscribe_mid = client.subscribe([(t, 1) for t in self._subscriptions()])

    def _on_connect_fail(self, client, userdata) -> None:
        self.last_error = self.last_error or "could not connect (network or TLS)"
        log.warning("MQTT %s:%s: connection failed; retrying", self.config.host, self.config.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._call_soon(self._connected.clear)
        if reason_code != 0:
            log.warning("MQTT disconnected (%s); reconnecting with backoff", reason_code)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        for topic, rc in zip(self._subscriptions(), reason_codes):
            if rc.is_failure:
                log.error(
                    "MQTT: the broker refused the subscription to %s (%s): check its ACL for user %s",
                    topic,
                    rc,
                    self.config.username or self.node_id,
                )
        if mid == self._subscribe_mid:
            self._call_soon(self._connected_in_loop, self._session_present)

    def _on_message(self, client, userdata, message) -> None:
        self._call_soon(self._route_safely, message)

    def _subscriptions(self) -> list[str]:
        return [f"{self.reply_base}/#"]

    def _connected_in_loop(self, session_present: bool) -> None:
        self._ever_connected = True
        self.last_error = ""
        self._connected.set()
        log.info(
            "MQTT connected to %s:%s as %s (session present: %s)",
            self.config.host,
            self.config.port,
            self.config.username or self.node_id,
            session_present,
        )

    def _route_safely(self, message) -> None:
        try:
            self._route(message)
        except Exception:  # nothing a client sends may stop the node
            log.exception("MQTT: failed to route a message on %r", getattr(message, "topic", "?"))

    def _route(self, message) -> None:
        if message.topic.startswith(self.reply_base + "/"):
            self._take_reply(message)
        else:
            log.warning("MQTT: message on unexpected topic %r ignored", message.topic)

    def _ack(self, message) -> None:
        """With manual acks a QoS 1 message is acknowledged only once it was handled: a
        node that dies with a link in hand gets it again (the replay cache stops a second
        handling), and the broker's in-flight window throttles a flood."""
        if self._manual_ack:
            try:
                self._client.ack(message.mid, message.qos)
            except Exception:
                log.debug("MQTT: ack failed", exc_info=True)

    def _take_reply(self, message) -> bool:
        corr = getattr(message.properties, "CorrelationData", None) if message.properties else None
        pending = self._pending.pop(corr, None) if corr is not None else None
        if pending is None:
            log.info("MQTT: a reply no request waits for (late or duplicate) on %s", message.topic)
            return False
        if not pending.future.done():
            try:
                pending.future.set_result(parse_reply(message.payload))
            except TransportError as e:
                pending.future.set_exception(e)
        return True

    # --- client side ---------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ):
        return self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    async def request(self, peer: Peer | str, link_text: str | None = None, timeout: float = 60.0) -> str:
        """Send a link to `peer`'s inbox and wait for the reply link. `peer` is a Peer
        or a node id. A JSON error reply raises TransportError with the peer's reason."""
        if link_text is None:
            raise TypeError("request(peer, link_text, timeout)")
        peer_id = peer.node_id if isinstance(peer, Peer) else str(peer)
        corr = uuid.uuid4().bytes
        loop = asyncio.get_running_loop()
        peeked = peek_claims(link_text)
        pending = _Pending(loop.create_future(), peeked[1] if peeked else None, peer_id)
        self._pending[corr] = pending
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = f"{self.reply_base}/{corr.hex()}"
        props.CorrelationData = corr
        props.MessageExpiryInterval = max(1, int(timeout))
        # QoS 1: if the broker is away paho keeps the message and sends it on reconnect.
        self.publish(self.topic("inbox", node_id=peer_id), link_text.strip(), qos=1, properties=props)
        try:
            return await asyncio.wait_for(pending.future, timeout)
        except TimeoutError:
            where = "" if self.connected else " (not connected to the broker)"
            raise TransportError(
                "timeout", f"no reply from {peer_id} over MQTT within {timeout:.0f} s{where}"
            ) from None
        finally:
            self._pending.pop(corr, None)


class MqttTransport(MqttClient):
    """The daemon side: serves this node's inbox and cmd/call, publishes status, events
    and (optionally) Home Assistant discovery. It is also the client for the node's own
    outgoing calls (`request`)."""

    def __init__(
        self,
        config: MqttSection,
        identity: Identity,
        handler: Handler,
        *,
        peers: PeerStore | None = None,
        on_call: CallStarter | None = None,
        name: str = "media-node",
        active_calls: Callable[[], int] | None = None,
        source_state: Callable[[], str] | None = None,
        workers: int = 4,
        handle_timeout: float = HANDLE_TIMEOUT,
    ):
        self.name = name
        prefix_status = node_topic(config.prefix, identity.node_id, "status")
        super().__init__(
            config,
            identity,
            persistent=True,
            manual_ack=True,
            will=(prefix_status, self._status_payload("offline", identity.node_id, name, 0)),
        )
        self.reply_base = self.topic("reply")
        self.handler = handler
        self.peers = peers
        self.on_call = on_call
        self.active_calls = active_calls or (lambda: 0)
        self.source_state = source_state  # available | unavailable | none (the camera)
        self.handle_timeout = handle_timeout
        self.counts = {"handled": 0, "rejected": 0}
        # Unbounded on purpose for QoS 1 (the broker's in-flight window bounds those: a
        # message is acked only once handled); QoS 0 bypasses that window, so it is
        # refused as busy once `queue_limit` messages wait.
        self._queue: asyncio.Queue = asyncio.Queue()
        self.queue_limit = max(1, workers) * QUEUE_PER_WORKER
        self._busy_refused = 0
        self._busy_report: asyncio.TimerHandle | None = None
        self._workers_n = workers
        self._tasks: list[asyncio.Task] = []
        self._busy = 0
        self.home_assistant = None
        if config.home_assistant:
            from .homeassistant import HomeAssistantDiscovery

            self.home_assistant = HomeAssistantDiscovery(self, peers)

    @staticmethod
    def _status_payload(state: str, node_id: str, name: str, calls: int, source: str = "") -> bytes:
        status = {
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

    def _subscriptions(self) -> list[str]:
        subs = [self.topic("inbox"), self.topic("cmd", "#"), f"{self.reply_base}/#"]
        if self.home_assistant is not None:
            subs.extend(self.home_assistant.subscriptions())
        return subs

    async def start(self, *, wait: bool = False, timeout: float = CONNECT_TIMEOUT) -> None:
        """Connect (retrying with backoff in the background) and serve. With `wait`,
        return once connected (TransportError after `timeout`)."""
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"mqtt-worker-{i}") for i in range(self._workers_n)
        ]
        if self.home_assistant is not None:
            self._tasks.append(asyncio.create_task(self._refresh_discovery(), name="mqtt-ha-refresh"))
        await self.connect(timeout, wait=wait)

    async def stop(self) -> None:
        if self._busy_report is not None:
            self._busy_report.cancel()
            self._report_busy()
        if self.connected:
            info = self.publish(
                self.topic("status"),
                self._status_payload("offline", self.node_id, self.name, 0),
                qos=1,
                retain=True,
            )
            try:
                await asyncio.to_thread(info.wait_for_publish, 2.0)
            except (RuntimeError, ValueError):
                pass
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.close()

    async def __aenter__(self):
        await self.start(wait=True)
        return self

    async def __aexit__(self, *exc) -> None:
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

    async def _refresh_discovery(self, every: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every)
            if self.connected:
                try:
                    self.home_assistant.refresh_if_changed()
                except Exception:
                    log.exception("Home Assistant discovery refresh failed")

    # --- status and events ---------------------------------------------------------------

    def _connected_in_loop(self, session_present: bool) -> None:
        super()._connected_in_loop(session_present)
        self.publish_status()
        if self.home_assistant is not None:
            self.home_assistant.publish()

    def publish_status(self) -> None:
        """Retained: whoever subscribes later sees the current state at once."""
        try:
            calls = int(self.active_calls())
        except Exception:
            calls = 0
        self.publish(
            self.topic("status"),
            self._status_payload("online", self.node_id, self.name, calls, self._source()),
            qos=1,
            retain=True,
        )

    def _source(self) -> str:
        try:
            return self.source_state() if self.source_state is not None else ""
        except Exception:
            return ""

    def publish_event(self, event: dict) -> None:
        """CallManager.on_event callback (and the transport's own rejections)."""
        try:
            payload = json.dumps({"node_id": self.node_id, **_scrub(event)}, default=str)
            self.publish(self.topic("events"), payload, qos=1)
            if event.get("event") in ("call-started", "call-ended", "source"):
                self.publish_status()
        except Exception:
            log.exception("MQTT: could not publish an event")

    # --- serving -------------------------------------------------------------------------

    def _route(self, message) -> None:
        topic = message.topic
        if topic.startswith(self.reply_base + "/") or (
            self.home_assistant is not None and self.home_assistant.owns(topic)
        ):
            self._ack(message)  # handled right here
        if topic.startswith(self.reply_base + "/"):
            if not self._take_reply(message):
                self._refuse(message, "bad-request", "a reply that no request of this node waits for")
            return
        if self.home_assistant is not None and self.home_assistant.owns(topic):
            self.home_assistant.on_message(message)
            return
        if getattr(message, "qos", 1) == 0 and self._queue.qsize() >= self.queue_limit:
            self._refuse_busy(message)
            return
        self._queue.put_nowait(message)

    def _refuse_busy(self, message) -> None:
        """A QoS 0 message while the queue is full: an error reply (if it named a response
        topic) at once; the log line and the 'rejected' event come once per
        BUSY_REPORT_EVERY with a count, so a flood cannot flood the log and events too."""
        self.counts["rejected"] += 1
        self._reply(message, error_payload("busy", TRANSPORT_REASONS["busy"]))
        self._busy_refused += 1
        if self._busy_report is None and self._loop is not None:
            self._busy_report = self._loop.call_later(BUSY_REPORT_EVERY, self._report_busy)

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
                await self._serve(message)
            except asyncio.CancelledError:
                raise  # stopping: not acknowledged, so the broker delivers it again
            except Exception as e:  # a bug must cost one message, never the transport
                log.exception("MQTT: failed serving a message on %s", message.topic)
                self._refuse(message, "handler-error", f"{type(e).__name__}")
            finally:
                self._busy -= 1
            self._ack(message)

    def response_topic(self, message) -> str | None:
        """The message's response topic if it is one this node may answer on: only
        `<prefix>/<id>/reply/...`, so a sender cannot make the node publish to its own
        status, another inbox or Home Assistant's discovery topics."""
        props = message.properties
        topic = getattr(props, "ResponseTopic", None) if props else None
        if topic is None:
            return None
        parts = topic.split("/") if isinstance(topic, str) else []
        base = self.config.prefix.strip("/").split("/")
        if (
            len(topic) > MAX_RESPONSE_TOPIC
            or "+" in topic
            or "#" in topic
            or "\x00" in topic
            or len(parts) < len(base) + 3
            or parts[: len(base)] != base
            or parts[len(base) + 1] != "reply"
            or not all(parts)
        ):
            raise ValueError(
                f"response topic must be {self.config.prefix}/<id>/reply/... (got {topic[:100]!r})"
            )
        return topic

    async def _serve(self, message) -> None:
        topic = message.topic
        try:
            self.response_topic(message)
        except ValueError as e:
            self._refuse(message, "bad-request", str(e))
            return
        if topic == self.topic("inbox"):
            await self._serve_link(message)
        elif topic == self.topic("cmd", "call"):
            await self._serve_call(message)
        else:
            self._refuse(message, "bad-request", f"unknown topic {topic!r}: use inbox or cmd/call")

    def _payload_text(self, message, what: str) -> str | None:
        payload = message.payload or b""
        if len(payload) > MAX_LINK_BYTES:
            self._refuse(message, "oversized", f"{len(payload)} bytes > {MAX_LINK_BYTES}")
            return None
        try:
            text = payload.decode("ascii").strip() if what == "link" else payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            self._refuse(message, "malformed", f"a {what} is {'ASCII' if what == 'link' else 'UTF-8'} text")
            return None
        if not text:
            self._refuse(message, "empty", f"the message holds no {what}")
            return None
        return text

    async def _serve_link(self, message) -> None:
        text = self._payload_text(message, "link")
        if text is None:
            return
        peeked = peek_claims(text)
        if peeked and peeked[0].kind in ("answer", "error") and self._deliver_answer(peeked[0].ofh, text):
            return
        try:
            reply = await asyncio.wait_for(self.handler(text), self.handle_timeout)
        except TimeoutError:
            self._refuse(message, "timeout", f"no reply within {self.handle_timeout:.0f} s")
            return
        except Exception as e:  # LinkError and everything else: a reason, never a crash
            # The detail stays in this log; what leaves is a fixed text (no addresses).
            log.info("MQTT: inbox link refused: %s: %s", type(e).__name__, e)
            info = public_error(e)
            self._refuse(message, info["reason"], info["message"])
            return
        self.counts["handled"] += 1
        if reply is None:
            return
        if not self._reply(message, reply.encode()):
            # No response topic: an answer goes to the sender's own inbox.
            sender = peeked[0].iss if peeked else None
            if sender:
                self.publish(self.topic("inbox", node_id=sender), reply, qos=1)
            else:
                self.publish_event(
                    {
                        "event": "rejected",
                        "transport": "mqtt",
                        "reason": "bad-request",
                        "message": "a sealed link without a response topic: the reply has nowhere to go",
                    }
                )

    def _deliver_answer(self, ofh: str, text: str) -> bool:
        """An answer sent to our inbox instead of our reply topic. Only a reply that
        verifies (signed by the peer asked, to us, in time, naming our offer) resolves
        the request: a forgery must not use up the place of the real answer. The caller
        still opens it fully (allowlist, replay cache)."""
        for corr, pending in list(self._pending.items()):
            if pending.digest and pending.digest == ofh and not pending.future.done():
                try:
                    opened = LinkOpener(self.identity, None).open(text, expect_offer=pending.digest)
                except LinkError as e:
                    log.warning(
                        "MQTT: an answer naming a pending request does not verify (%s); "
                        "still waiting for the real one",
                        e.reason,
                    )
                    return False
                if opened.claims.iss != pending.peer_id:
                    log.warning(
                        "MQTT: an answer to a pending request was signed by %s, not by the "
                        "peer asked; still waiting for the real one",
                        opened.claims.iss,
                    )
                    return False
                pending.future.set_result(text)
                self._pending.pop(corr, None)
                return True
        return False

    async def _serve_call(self, message) -> None:
        text = self._payload_text(message, "command")
        if text is None:
            return
        target = text
        if text.startswith("{"):
            try:
                data = json.loads(text)
                target = data["peer"] if isinstance(data, dict) else None
            except (ValueError, KeyError):
                target = None
            if not isinstance(target, str) or not target:
                self._refuse(message, "bad-request", 'cmd/call takes a peer name or id, or {"peer": "NAME"}')
                return
        if self.peers is None or self.on_call is None:
            self._refuse(message, "bad-request", "this node does not make calls")
            return
        try:
            peer = self.peers.find(target.strip())
        except NodeError as e:
            log.error("MQTT: cmd/call: cannot read the allowlist: %s", e)
            self._refuse(message, "allowlist-unreadable", "this node's allowlist cannot be read; see its log")
            return
        if peer is None:
            self._refuse(message, "unknown-peer", f"{target[:80]!r} is not a peer in this node's allowlist")
            return
        if not peer.may("call"):
            self._refuse(
                message, "no-permission", f"peer {peer.name!r} is not allowed 'call' in the allowlist"
            )
            return
        try:
            call = await self.on_call(peer)
        except Exception as e:
            # The exception's text may name underlay addresses (an OverlayError, a
            # PrivacyError): it goes to this log only; MQTT gets a fixed text per reason.
            if isinstance(e, NodeError):
                log.warning("MQTT: cmd/call to %s failed: %s", peer.name, e)
            else:
                log.exception("MQTT: cmd/call to %s failed", peer.name)
            info = public_error(e)
            self._refuse(message, info["reason"], info["message"], peer=peer.name)
            return
        self.counts["handled"] += 1
        result = {"ok": True, "peer": peer.name, "peer_id": peer.node_id}
        call_id = getattr(call, "id", None)
        if call_id:
            result["call"] = call_id
        self._reply(message, json.dumps(result).encode())

    def _reply(self, message, payload: bytes) -> bool:
        """Publish to the message's response topic; False when it named none (or a bad one)."""
        try:
            topic = self.response_topic(message)
        except ValueError:
            return False
        if topic is None:
            return False
        out = Properties(PacketTypes.PUBLISH)
        corr = getattr(message.properties, "CorrelationData", None)
        if corr is not None:
            out.CorrelationData = corr
        try:
            self.publish(topic, payload, qos=1, properties=out)
        except (ValueError, TypeError) as e:
            log.warning("MQTT: cannot reply to %r: %s", topic, e)
            return False
        return True

    def _refuse(self, message, reason: str, detail: str, **extra) -> None:
        """Every refusal: an error reply where one can go, and a 'rejected' event."""
        self.counts["rejected"] += 1
        where = (
            message.topic.removeprefix(self.topic() + "/")
            if message.topic.startswith(self.topic())
            else message.topic
        )
        log.warning("MQTT: refused a message on %s: %s: %s", where, reason, detail)
        replied = self._reply(message, error_payload(reason, detail, **extra))
        self.publish_event(
            {
                "event": "rejected",
                "transport": "mqtt",
                "topic": where,
                "reason": reason,
                "message": detail,
                "replied": replied,
                **extra,
            }
        )


class MqttRequester:
    """`media-node view PEER --via mqtt`: one connection per request (the viewer sends
    one link), closed as soon as the reply is in."""

    def __init__(self, config: MqttSection, identity: Identity, *, connect_timeout: float = CONNECT_TIMEOUT):
        self.config = config
        self.identity = identity
        self.connect_timeout = connect_timeout

    async def request(self, peer: Peer | str, link_text: str, timeout: float = 60.0) -> str:
        client = MqttClient(self.config, self.identity)
        await client.connect(self.connect_timeout)
        try:
            return await client.request(peer, link_text, timeout)
        finally:
            await client.close()


__all__ = ["MqttClient", "MqttRequester", "MqttTransport", "error_payload", "node_topic", "parse_reply"]
