"""Transports: how links arrive at the daemon and how replies leave (file drop, MQTT,
manual). The daemon side hands each incoming link text to a `Handler` (the
CallManager's `handle_link`) and sends the reply back where the request came from; the
client side (`request`) sends one link and waits for the reply link."""

from __future__ import annotations

from typing import Awaitable, Callable

from ..errors import NodeError

# CallManager.handle_link: a link text in, the signed reply link out (None: no reply);
# raises LinkError (or any other error) for a refused link.
Handler = Callable[[str], Awaitable["str | None"]]

# Reason codes a transport adds to those of node.links.errors.REASONS.
TRANSPORT_REASONS = {
    "empty": "the file or message is empty",
    "not-a-file": "only regular files are read from the inbox",
    "bad-request": "the message is not a request this topic accepts",
    "unknown-peer": "the named peer is not in this node's allowlist",
    "no-permission": "the peer lacks the permission the command needs",
    "handler-error": "the node failed while handling the link",
    "interrupted": "the node stopped while handling the link",
    "timeout": "no reply arrived in time",
    "unreachable": "the transport could not deliver the request",
}


class TransportError(NodeError):
    """A request over a transport failed: a stable reason code and a message for people
    (the remote side's rejection reason when it sent one)."""

    exit_code = 4

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail or TRANSPORT_REASONS.get(reason, reason)
        super().__init__(f"{reason}: {self.detail}")

    def to_dict(self) -> dict:
        return {"reason": self.reason, "message": self.detail}


def error_info(exc: BaseException) -> dict:
    """{"reason", "message"} for any exception a handler raised: LinkError and
    TransportError keep their reason; anything else is a handler-error naming its type
    (never a traceback, never the link's content)."""
    reason = getattr(exc, "reason", None)
    detail = getattr(exc, "detail", None)
    if isinstance(reason, str) and isinstance(detail, str):
        return {"reason": reason, "message": detail}
    message = str(exc) or type(exc).__name__
    return {"reason": "handler-error", "message": f"{type(exc).__name__}: {message}"[:500]}


__all__ = ["Handler", "TransportError", "TRANSPORT_REASONS", "error_info"]
