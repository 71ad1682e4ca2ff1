"""Why a request over a transport failed, and the reasons a transport adds to those of
node.links.errors (a refused file or message)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ..errors import NodeError
from ..links.errors import REASONS as LINK_REASONS

TRANSPORT_REASONS: dict[str, str] = {
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


class TransportError(NodeError):
    """A request over a transport failed, or a file or message was refused before it
    reached the handler: a stable reason code and a message for people (the remote
    side's rejection reason when it sent one)."""

    exit_code = 4
    family = "transport"
    REASONS: ClassVar[Mapping[str, str]] = TRANSPORT_REASONS

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or TRANSPORT_REASONS.get(reason, reason), reason=reason)

    def text(self, detail: str) -> str:
        return f"{self.reason}: {detail}"

    @classmethod
    def public_table(cls) -> Mapping[str, str]:
        # A transport also relays a peer's link refusal (its reason is a link reason);
        # where both name one reason, the link's text is the one sent.
        return {**TRANSPORT_REASONS, **LINK_REASONS}


__all__ = ["TRANSPORT_REASONS", "TransportError"]
