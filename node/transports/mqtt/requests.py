"""What the daemon does with one message on its inbox or cmd/call topic: a link goes
to the call handler and its reply back to the response topic; cmd/call names a peer to
call. Every refusal gets an error reply (where one can go) and a "rejected" event; what
leaves the node is a fixed text per reason, never an exception's own text."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ...errors import NodeError
from ...identity import InvalidNodeId, decode_node_id
from ...links.claims import REPLY_KINDS
from ...links.link import MAX_LINK_BYTES
from ...peers import Peer, PeerStore
from .. import TRANSPORT_REASONS, Handler, TransportError, public_error
from .messages import error_payload, node_topic, peek_claims

if TYPE_CHECKING:
    from .commands import DoorbellCommands

log = logging.getLogger(__name__)

MAX_RESPONSE_TOPIC = 512
BAD_RESPONSE_TOPIC = "the response topic must be <prefix>/<your id>/reply/<this node's id>/..."
DOORBELL_COMMANDS = ("ring", "snapshot")


@dataclass(eq=False, repr=False, kw_only=True)
class MqttRequests:
    prefix: str
    node_id: str
    handler: Handler
    handle_timeout: float
    peers: PeerStore | None
    on_call: Callable[[Peer], Awaitable[object]] | None
    publish: Callable[..., object]
    # {"peers": [...]}: the first to answer wins
    on_call_first: Callable[[list[Peer]], Awaitable[object]] | None = None
    publish_event: Callable[[Mapping[str, object]], None]
    take_inbox_answer: Callable[[str, str], bool]
    controllers: frozenset[str] = frozenset()  # whose commands this node takes
    counts: dict[str, int] = field(init=False, default_factory=lambda: {"handled": 0, "rejected": 0})
    # cmd/ring, cmd/snapshot (set by the server)
    commands: DoorbellCommands | None = field(init=False, default=None)

    def topic(self, *parts: str, node_id: str | None = None) -> str:
        return node_topic(self.prefix, node_id or self.node_id, *parts)

    def response_topic(self, message: MQTTMessage, requester: str | None) -> str | None:
        """The message's response topic, if it names one this node may answer on: only
        `<prefix>/<requester>/reply/<this node>/...`, the requester's own reply tree
        (its branch for this node, which the broker's ACL lets this node alone write), so
        nobody can make the node publish into another node's replies, its own status, an
        inbox or Home Assistant's topics. `requester` None (a sealed link, not opened
        yet): any node id in that place, checked again once the link is opened.
        ValueError (a fixed text: the topic itself is never repeated) otherwise."""
        props = message.properties
        topic: object = getattr(props, "ResponseTopic", None) if props else None
        if topic is None:
            return None
        if not isinstance(topic, str):
            raise ValueError(BAD_RESPONSE_TOPIC)
        parts = topic.split("/")
        base = self.prefix.strip("/").split("/")
        n = len(base)
        owner = parts[n] if len(parts) > n else ""
        if requester is None and owner not in self.controllers:
            try:
                decode_node_id(owner)
                requester = owner
            except InvalidNodeId:
                requester = None
        if (
            requester is None
            or len(topic) > MAX_RESPONSE_TOPIC
            or "+" in topic
            or "#" in topic
            or "\x00" in topic
            or len(parts) < n + 4
            or parts[:n] != base
            or parts[n : n + 3] != [requester, "reply", self.node_id]
            or not all(parts)
        ):
            raise ValueError(BAD_RESPONSE_TOPIC)
        return topic

    def _requester(self, message: MQTTMessage) -> str | None:
        """Who asked, as far as routing goes: a command's controller (its topic, which the
        ACL lets that controller alone write) or an unsealed link's claimed sender (an
        error reply to a forged claim goes where that claim says: nobody can use it)."""
        command = self._command(message.topic)
        if command is not None:
            return command[1]
        if message.topic == self.topic("inbox"):
            text = (message.payload or b"").decode("ascii", "replace").strip()
            peeked = peek_claims(text)
            return peeked[0].iss if peeked else None
        return None

    def _command(self, topic: str) -> tuple[str, str] | None:
        """(command, controller) for <prefix>/<me>/cmd/<command>/<controller>."""
        head = self.topic("cmd") + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 2 or not all(parts):
            return None
        return parts[0], parts[1]

    async def serve(self, message: MQTTMessage) -> None:
        topic = message.topic
        requester = self._requester(message)
        try:
            self.response_topic(message, requester)
        except ValueError as e:
            self.refuse(message, "bad-request", str(e))
            return
        command = self._command(topic)
        if topic == self.topic("inbox"):
            await self._serve_link(message)
        elif command is not None and command[1] in self.controllers:
            if command[0] == "call":
                await self._serve_call(message)
            elif self.commands is not None and command[0] in DOORBELL_COMMANDS:
                await self.commands.serve(message, command[0])
            else:
                self.refuse(message, "bad-request", "unknown command: use cmd/<command>/<controller>")
        elif command is not None:
            # Not a controller this node knows: nobody vouches for who published it.
            self.refuse(message, "bad-request", "commands come only from the controllers in mqtt.controllers")
        else:
            self.refuse(message, "bad-request", "unknown topic: use inbox or cmd/<command>/<controller>")

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
        if peeked and peeked[0].kind in REPLY_KINDS and self.take_inbox_answer(peeked[0].ofh, text):
            return
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel
            # that arrives as the handler returns, and stop() would wait for this worker.
            async with asyncio.timeout(self.handle_timeout):
                reply = await self.handler(text)
        except TimeoutError:
            self.refuse(message, "timeout", f"no reply within {self.handle_timeout:.0f} s")
            return
        except Exception as e:  # LinkError and everything else: a reason, never a crash
            # The detail stays in this log; what leaves is a fixed text (no addresses).
            log.info("MQTT: inbox link refused: %s: %s", type(e).__name__, e)
            info = public_error(e)
            self.refuse_with(message, info["reason"], str(e), info["message"], {})
            return
        self.counts["handled"] += 1
        if reply is None:
            return
        # Whom the reply answers, as verified by opening the link (sealed or not).
        sender = getattr(reply, "recipient", None) or (peeked[0].iss if peeked else None)
        if sender is None:
            log.error("MQTT: a reply with no known recipient was not sent")
            return
        if not self.reply(message, reply.encode(), requester=sender):
            # No response topic (or, for a sealed link, one in another node's tree): the
            # answer goes to the verified sender's own inbox, never anywhere else.
            if self._has_response_topic(message):
                self.refuse_with(message, "bad-request", BAD_RESPONSE_TOPIC, None, {}, reply=False)
            self.publish(self.topic("inbox", node_id=sender), reply, qos=1)

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
            self.refuse_with(message, info["reason"], str(e), info["message"], {"peer": peer.name})
            return
        self.counts["handled"] += 1
        result = {"ok": True, "peer": peer.name, "peer_id": peer.node_id}
        call_id = getattr(call, "id", None)
        if call_id:
            result["call"] = call_id
        self.reply(message, json.dumps(result).encode())

    @staticmethod
    def _has_response_topic(message: MQTTMessage) -> bool:
        return getattr(message.properties, "ResponseTopic", None) is not None if message.properties else False

    def reply(self, message: MQTTMessage, payload: bytes, *, requester: str | None = None) -> bool:
        """Publish to the message's response topic if it is in the requester's own reply
        tree (`requester`: the verified sender; else who the message says asked);
        False when it named none, or one this node may not answer on."""
        try:
            topic = self.response_topic(message, requester or self._requester(message))
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
        """Every refusal: an error reply where one may go, and a 'rejected' event. Both
        carry the fixed text for the reason, never `detail` (it may repeat what the
        sender sent: a topic, a peer name, an address); the detail goes to this log."""
        self.refuse_with(message, reason, detail, None, extra)

    def refuse_with(
        self,
        message: MQTTMessage,
        reason: str,
        detail: str,
        public: str | None,
        extra: Mapping[str, object],
        *,
        reply: bool = True,
    ) -> None:
        """refuse() with the caller's own fixed text (`public`, None: the reason's), and
        `reply=False` when no error reply may go out (only the event)."""
        self.counts["rejected"] += 1
        where = self._public_topic(message.topic)
        log.warning("MQTT: refused a message on %r: %s: %s", message.topic[:200], reason, detail)
        if public is None:
            public = TransportError.public_table().get(reason, TRANSPORT_REASONS["bad-request"])
        replied = reply and self.reply(message, error_payload(reason, public, **extra))
        self.publish_event(
            {
                "event": "rejected",
                "transport": "mqtt",
                "topic": where,
                "reason": reason,
                "message": public,
                "replied": replied,
                **extra,
            }
        )

    def _public_topic(self, topic: str) -> str:
        """The topic as an event may name it: one of this node's own, with a command's
        controller only if configured; anything else only by its length."""
        command = self._command(topic)
        if topic == self.topic("inbox"):
            return "inbox"
        if (
            command is not None
            and command[0] in ("call", *DOORBELL_COMMANDS)
            and command[1] in self.controllers
        ):
            return f"cmd/{command[0]}/{command[1]}"
        return f"({len(topic.encode())}-byte topic)"


__all__ = ["MAX_RESPONSE_TOPIC", "MqttRequests"]
