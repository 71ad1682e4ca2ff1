"""What travels over MQTT besides links: topic names, JSON error replies, and a peek at
an unverified link's claims for routing."""

from __future__ import annotations

import json

from ...links.claims import Claims
from ...links.jws import CompactJws, jws_digest
from ...links.link import PREFIX, SEALED_PREFIX
from ...links.payload import decode_payload
from .. import TransportError


def node_topic(prefix: str, node_id: str, *parts: str) -> str:
    return "/".join([prefix.strip("/"), node_id, *parts])


def error_payload(reason: str, message: str, **extra: object) -> bytes:
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


def peek_claims(text: str) -> tuple[Claims, str] | None:
    """The claims and digest of an unsealed link without verifying it (routing only,
    never trust); None for a sealed link or anything unreadable."""
    try:
        text = text.strip()
        if text.startswith(SEALED_PREFIX):
            return None
        jws = text.removeprefix(PREFIX)
        return decode_payload(CompactJws(jws).payload), jws_digest(jws)
    except Exception:
        return None


__all__ = ["error_payload", "node_topic", "parse_reply", "peek_claims"]
