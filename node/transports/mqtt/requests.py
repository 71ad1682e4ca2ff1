"""What the daemon does with one message on its inbox or cmd/call topic: a link goes
to the call handler and its reply back to the response topic; cmd/call names a peer to
call. Every refusal gets an error reply (where one can go) and a "rejected" event; what
leaves the node is a fixed text per reason, never an exception's own text."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ...errors import NodeError
from ...links.link import MAX_LINK_BYTES
from ...peers import Peer, PeerStore
from .. import Handler, public_error
from .messages import error_payload, node_topic, peek_claims

if TYPE_CHECKING:
    from .commands import DoorbellCommands

log = logging.getLogger(__name__)

MAX_RESPONSE_TOPIC = 512
DOORBELL_COMMANDS = ("ring", "snapshot")


class MqttRequests:
    def __init__(
        self,
        *,
        prefix: str,
        node_id: str,
        handler: Handler,
        handle_timeout: float,
        peers: PeerStore | None,
        on_call: Callable[[Peer], Awaitable[object]] | None,
        publish: Callable[..., object],
        on_call_first: Callable[[list[Peer]], Awaitable[object]] | None = None,
        publish_event: Callable[[Mapping[str, object]], None],
        take_inbox_answer: Callable[[str, str], bool],
    ):
        self.prefix = prefix
        self.node_id = node_id
        self.handler = handler
        self.handle_timeout = handle_timeout
        self.peers = peers
        self.on_call = on_call
        self.on_call_first = on_call_first  # {"peers": [...]}: the first to answer wins
        self.publish = publish
        self.publish_event = publish_event
        self.take_inbox_answer = take_inbox_answer
        self.counts = {"handled": 0, "rejected": 0}
        self.commands: DoorbellCommands | None = None  # cmd/ring, cmd/snapshot (set by the server)

    def topic(self, *parts: str, node_id: str | None = None) -> str:
        return node_topic(self.prefix, node_id or self.node_id, *parts)

    def response_topic(self, message: MQTTMessage) -> str | None:
        """The message's response topic if it is one this node may answer on: only
        `<prefix>/<id>/reply/...`, so a sender cannot make the node publish to its own
        status, another inbox or Home Assistant's discovery topics."""
        props = message.properties
        raw: object = getattr(props, "ResponseTopic", None) if props else None
        if raw is None:
            return None
        topic = raw if isinstance(raw, str) else str(raw)
        parts = topic.split("/") if isinstance(raw, str) else []
        base = self.prefix.strip("/").split("/")
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
            raise ValueError(f"response topic must be {self.prefix}/<id>/reply/... (got {topic[:100]!r})")
        return topic

    async def serve(self, message: MQTTMessage) -> None:
        topic = message.topic
        try:
            self.response_topic(message)
        except ValueError as e:
            self.refuse(message, "bad-request", str(e))
            return
        if topic == self.topic("inbox"):
            await self._serve_link(message)
        elif topic == self.topic("cmd", "call"):
            await self._serve_call(message)
        elif self.commands is not None and topic in [self.topic("cmd", c) for c in DOORBELL_COMMANDS]:
            await self.commands.serve(message, topic.rsplit("/", 1)[-1])
        else:
            known = "inbox, cmd/call" + (", cmd/ring, cmd/snapshot" if self.commands is not None else "")
            self.refuse(message, "bad-request", f"unknown topic {topic!r}: use {known}")

    def _payload_text(self, message: MQTTMessage, what: str) -> str | None:
        payload = message.payload or b""
        if len(payload) > MAX_LINK_BYTES:
            self.refuse(message, "oversized", f"{len(payload)} bytes > {MAX_LINK_BYTES}")
            return None
        try:
            text = payload.decode("ascii").strip() if what == "link" else payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            self.refuse(message, "malformed", f"a {what} is {'ASCII' if what == 'link' else 'UTF-8'} text")
            return None
        if not text:
            self.refuse(message, "empty", f"the message holds no {what}")
            return None
        return text

    async def _serve_link(self, message: MQTTMessage) -> None:
        text = self._payload_text(message, "link")
        if text is None:
            return
        peeked = peek_claims(text)
        if peeked and peeked[0].kind in ("answer", "error") and self.take_inbox_answer(peeked[0].ofh, text):
            return
        try:
            reply = await asyncio.wait_for(self.handler(text), self.handle_timeout)
        except TimeoutError:
            self.refuse(message, "timeout", f"no reply within {self.handle_timeout:.0f} s")
            return
        except Exception as e:  # LinkError and everything else: a reason, never a crash
            # The detail stays in this log; what leaves is a fixed text (no addresses).
            log.info("MQTT: inbox link refused: %s: %s", type(e).__name__, e)
            info = public_error(e)
            self.refuse(message, info["reason"], info["message"])
            return
        self.counts["handled"] += 1
        if reply is None:
            return
        if not self.reply(message, reply.encode()):
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

    async def _serve_call(self, message: MQTTMessage) -> None:
        text = self._payload_text(message, "command")
        if text is None:
            return
        targets: list[object] = [text]
        if text.startswith("{"):
            try:
                data = json.loads(text)
                targets = data["peers"] if "peers" in data else [data["peer"]]
            except (ValueError, KeyError, TypeError):
                targets = []
            if not isinstance(targets, list) or not targets or len(targets) > 16:
                targets = []
            if not targets or not all(isinstance(t, str) and t for t in targets):
                self.refuse(
                    message,
                    "bad-request",
                    'cmd/call takes a peer name or id, {"peer": "NAME"} or {"peers": ["A", "B"]} '
                    "(at most 16)",
                )
                return
        if self.peers is None or self.on_call is None or (len(targets) > 1 and self.on_call_first is None):
            self.refuse(message, "bad-request", "this node does not make calls")
            return
        callees: list[Peer] = []
        for target in targets:
            assert isinstance(target, str)
            try:
                peer = self.peers.find(target.strip())
            except NodeError as e:
                log.error("MQTT: cmd/call: cannot read the allowlist: %s", e)
                self.refuse(
                    message, "allowlist-unreadable", "this node's allowlist cannot be read; see its log"
                )
                return
            if peer is None:
                self.refuse(
                    message, "unknown-peer", f"{target[:80]!r} is not a peer in this node's allowlist"
                )
                return
            if not peer.may("call"):
                self.refuse(
                    message, "no-permission", f"peer {peer.name!r} is not allowed 'call' in the allowlist"
                )
                return
            callees.append(peer)
        peer = callees[0]
        try:
            if len(callees) > 1 and self.on_call_first is not None:
                call = await self.on_call_first(callees)
                peer = getattr(call, "peer", peer)  # the one who answered
            else:
                call = await self.on_call(peer)
        except Exception as e:
            # The exception's text may name underlay addresses (an OverlayError, a
            # PrivacyError): it goes to this log only; MQTT gets a fixed text per reason.
            if isinstance(e, NodeError):
                log.warning("MQTT: cmd/call to %s failed: %s", peer.name, e)
            else:
                log.exception("MQTT: cmd/call to %s failed", peer.name)
            info = public_error(e)
            self.refuse(message, info["reason"], info["message"], peer=peer.name)
            return
        self.counts["handled"] += 1
        result = {"ok": True, "peer": peer.name, "peer_id": peer.node_id}
        call_id = getattr(call, "id", None)
        if call_id:
            result["call"] = call_id
        self.reply(message, json.dumps(result).encode())

    def reply(self, message: MQTTMessage, payload: bytes) -> bool:
        """Publish to the message's response topic; False when it named none (or a bad one)."""
        try:
            topic = self.response_topic(message)
        except ValueError:
            return False
        if topic is None:
            return False
        out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        corr = getattr(message.properties, "CorrelationData", None)
        if corr is not None:
            out.CorrelationData = corr
        try:
            self.publish(topic, payload, qos=1, properties=out)
        except (ValueError, TypeError) as e:
            log.warning("MQTT: cannot reply to %r: %s", topic, e)
            return False
        return True

    def refuse(self, message: MQTTMessage, reason: str, detail: str, **extra: object) -> None:
        """Every refusal: an error reply where one can go, and a 'rejected' event."""
        self.counts["rejected"] += 1
        where = (
            message.topic.removeprefix(self.topic() + "/")
            if message.topic.startswith(self.topic())
            else message.topic
        )
        log.warning("MQTT: refused a message on %s: %s: %s", where, reason, detail)
        replied = self.reply(message, error_payload(reason, detail, **extra))
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


__all__ = ["MAX_RESPONSE_TOPIC", "MqttRequests"]
