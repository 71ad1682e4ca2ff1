"""The MQTT client (paho-mqtt 2.x, MQTT 5): a connection to the broker that can send a
link and wait for its reply (request/reply correlation).

paho runs its network loop (with reconnect and backoff) on its own thread; every
callback only hands the message to the asyncio loop, where all the work happens. The
client is used alone by the viewer (`--via mqtt`) and is composed into the daemon's
server (`MqttTransport`), which passes its subscriptions and a message handler in."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.client import MQTTMessage, MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ...config import MqttSection
from ...errors import NodeError
from ...identity import Identity
from ...links.errors import LinkError
from ...links.link import LinkOpener
from ...peers import Peer
from .. import TransportError
from .messages import node_topic, parse_reply, peek_claims

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0

MessageHandler = Callable[[MQTTMessage], None]


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


def _no_delay(client: paho.Client, userdata: Any, sock: Any) -> None:
    """Links and replies are single small packets a peer waits for: send each at once.
    paho leaves Nagle's algorithm on, so a reply published while the broker had not yet
    acknowledged our previous packet (an event, a PUBACK) waited for that ACK, which
    the broker's kernel delays by up to 40 ms."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (a proxy's wrapper, a test's fake)
        pass


@dataclass
class _Pending:
    future: asyncio.Future[str]
    digest: str | None
    peer_id: str = ""


class MqttClient:
    """A connection to the broker that can send a link and wait for its reply (the
    viewer's `--via mqtt`, and the daemon's outgoing calls). `persistent` keeps the
    session across disconnects (the daemon); a client is otherwise clean.

    Composed by the daemon's server: `subscriptions` are its topics (replies are always
    subscribed), `on_message` gets every message (it routes replies back with
    `take_reply`), and `on_ready` runs in the loop each time the broker has confirmed the
    subscriptions."""

    def __init__(
        self,
        config: MqttSection,
        identity: Identity,
        *,
        persistent: bool = False,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
        manual_ack: bool = False,
        reply_base: str | None = None,
        subscriptions: Sequence[str] = (),
        on_message: MessageHandler | None = None,
        on_ready: Callable[[], None] | None = None,
    ):
        self.config = config
        self.identity = identity
        self.node_id = identity.node_id
        self.persistent = persistent
        self.client_id = client_id or (
            f"mnode-{self.node_id}" if persistent else f"mnode-{self.node_id[:20]}-{uuid.uuid4().hex[:8]}"
        )
        self.session = uuid.uuid4().hex[:12]
        # Replies to this node come under <prefix>/<me>/reply/<responder id>/...: the
        # broker's ACL lets only the responder write its branch, so no node can forge
        # another's reply. A short-lived client adds its session (its replies only).
        self.reply_root = self.topic("reply")
        self.reply_base = reply_base or self.topic("reply", self.session)
        self._reply_session = [] if reply_base is not None else [self.session]
        mine = f"{self.reply_root}/#" if reply_base is not None else f"{self.reply_root}/+/{self.session}/#"
        self.subscriptions = [*subscriptions, mine]
        self._on_message_hook = on_message
        self._on_ready_hook = on_ready
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
        c.on_socket_open = _no_delay
        return c

    async def connect(self, timeout: float = CONNECT_TIMEOUT, *, wait: bool = True) -> None:
        """Start the network loop; with `wait`, return once the broker accepted us (raise
        TransportError naming the broker's refusal otherwise)."""
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
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

    async def __aenter__(self) -> MqttClient:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # paho's thread: hand everything to the loop.
    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:
                pass

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
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
        _, mid = client.subscribe([(t, 1) for t in self.subscriptions])
        self._subscribe_mid = -1 if mid is None else mid

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self.last_error = self.last_error or "could not connect (network or TLS)"
        log.warning("MQTT %s:%s: connection failed; retrying", self.config.host, self.config.port)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self._call_soon(self._connected.clear)
        if reason_code != 0:
            log.warning("MQTT disconnected (%s); reconnecting with backoff", reason_code)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reason_codes: list[Any], properties: Any
    ) -> None:
        for topic, rc in zip(self.subscriptions, reason_codes, strict=False):
            if rc.is_failure:
                log.error(
                    "MQTT: the broker refused the subscription to %s (%s): check its ACL for user %s",
                    topic,
                    rc,
                    self.config.username or self.node_id,
                )
        if mid == self._subscribe_mid:
            self._call_soon(self._connected_in_loop, self._session_present)

    def _on_message(self, client: paho.Client, userdata: Any, message: MQTTMessage) -> None:
        self._call_soon(self._route_safely, message)

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
        if self._on_ready_hook is not None:
            self._on_ready_hook()

    def _route_safely(self, message: MQTTMessage) -> None:
        try:
            if self._on_message_hook is not None:
                self._on_message_hook(message)
            elif self.is_reply(message.topic):
                self.take_reply(message)
            else:
                log.warning("MQTT: message on unexpected topic %r ignored", message.topic)
        except Exception:  # nothing a client sends may stop the node
            log.exception("MQTT: failed to route a message on %r", getattr(message, "topic", "?"))

    def is_reply(self, topic: str) -> bool:
        return topic.startswith(self.reply_root + "/")

    def response_topic_for(self, peer_id: str, corr: bytes) -> str:
        return "/".join([self.reply_root, peer_id, *self._reply_session, corr.hex()])

    def ack(self, message: MQTTMessage) -> None:
        """With manual acks a QoS 1 message is acknowledged only once it was handled: a
        node that dies with a link in hand gets it again (the replay cache stops a second
        handling), and the broker's in-flight window throttles a flood."""
        if self._manual_ack:
            try:
                self._client.ack(message.mid, message.qos)
            except Exception:
                log.debug("MQTT: ack failed", exc_info=True)

    def take_reply(self, message: MQTTMessage) -> bool:
        """Resolve the request a reply message answers; False when none waits for it."""
        corr = getattr(message.properties, "CorrelationData", None) if message.properties else None
        pending = self._pending.pop(corr, None) if corr is not None else None
        if pending is None:
            log.info("MQTT: a reply no request waits for (late or duplicate) on %s", message.topic)
            return False
        if not pending.future.done():
            try:
                pending.future.set_result(parse_reply(bytes(message.payload)))
            except TransportError as e:
                pending.future.set_exception(e)
        return True

    def take_inbox_answer(self, ofh: str, text: str) -> bool:
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

    # --- client side ---------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> MQTTMessageInfo:
        return self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    async def request(self, peer: Peer | str, link_text: str, timeout: float = 60.0) -> str:
        """Send a link to `peer`'s inbox and wait for the reply link. `peer` is a Peer
        or a node id. A JSON error reply raises TransportError with the peer's reason."""
        peer_id = peer.node_id if isinstance(peer, Peer) else str(peer)
        corr = uuid.uuid4().bytes
        loop = asyncio.get_running_loop()
        peeked = peek_claims(link_text)
        pending = _Pending(loop.create_future(), peeked[1] if peeked else None, peer_id)
        self._pending[corr] = pending
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = self.response_topic_for(peer_id, corr)
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


__all__ = ["CONNECT_TIMEOUT", "MqttClient", "read_password"]
