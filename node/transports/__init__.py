"""Transports: how links arrive at the daemon and how replies leave (file drop, MQTT,
manual). The daemon side hands each incoming link text to a `Handler` (the
CallManager's `handle_link`) and sends the reply back where the request came from; the
client side (`request`) sends one link and waits for the reply link."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import NodeError
from ..links.errors import REASONS

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
    "busy": "the node is busy; try again later",
}

# What a call failure may say where others read it (MQTT replies, events): one fixed text
# per reason, because an exception's own text can name underlay addresses or paths.
CALL_REASONS = {
    "busy": "the node already serves its maximum number of calls; try again later",
    "timeout": "the call was not set up in time",
    "stopping": "the node is shutting down; try again shortly",
    "bad-offer": "the offer was not acceptable (see the node's log)",
    "bad-reply": "the peer's reply was not an answer (see the node's log)",
    "no-candidate": "no candidate on the overlay address (see the node's log)",
    "no-permission": "the peer is not allowed this call in the allowlist",
    "no-media": "the node has no camera or microphone to share",
    "wrong-peer": "the reply was not signed by the peer that was asked",
    "privacy": "the node refused an SDP not confined to the overlay (see its log)",
    "unavailable": "the node could not place the call; see its log",
    "internal": "the node failed while placing the call; see its log",
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


def public_error(exc: BaseException) -> dict:
    """{"reason", "message"} safe to publish off the device (MQTT replies and events):
    the message is always a fixed text for the reason, never the exception's own text,
    which may carry underlay addresses (privacy: no underlay address leaves the node). Callers log the detail."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason in REASONS:
        return {"reason": reason, "message": REASONS[reason]}
    if isinstance(reason, str) and reason in TRANSPORT_REASONS:
        return {"reason": reason, "message": TRANSPORT_REASONS[reason]}
    code = getattr(exc, "code", None)  # CallError (also a peer's error link)
    if isinstance(code, str) and code in CALL_REASONS:
        return {"reason": code, "message": CALL_REASONS[code]}
    if type(exc).__name__ == "PrivacyError":
        return {"reason": "privacy", "message": CALL_REASONS["privacy"]}
    if isinstance(exc, NodeError):  # OverlayError and friends, or a peer's unknown code
        return {"reason": "unavailable", "message": CALL_REASONS["unavailable"]}
    return {"reason": "handler-error", "message": TRANSPORT_REASONS["handler-error"] + "; see its log"}


__all__ = ["CALL_REASONS", "TRANSPORT_REASONS", "Handler", "TransportError", "error_info", "public_error"]
