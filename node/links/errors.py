"""Why a link was refused: a stable reason code (for scripts, MQTT error replies and
rejected/*.reason.json) plus a message for people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ..errors import NodeError

REASONS: dict[str, str] = {
    "oversized": "the link is larger than the 64 KiB limit",
    "malformed": "the link is not a well-formed media-node link",
    "unseal-failed": "the sealed link could not be opened with this node's key",
    "tampered": "the payload was changed after it was signed",
    "bad-signature": "the signature does not verify with the sender's key",
    "wrong-audience": "the link is addressed to another node",
    "not-yet-valid": "the link's issue time is in the future",
    "expired": "the link has expired",
    "unknown-sender": "the sender is not in this node's allowlist",
    "no-permission": "the sender lacks the permission this link asks for",
    "replayed": "this link was already used",
    "wrong-offer": "the answer does not answer the offer this node sent",
    # Not the link's fault: this node's own allowlist cannot be read (a broken hand edit).
    "allowlist-unreadable": "this node's allowlist (peers.toml) cannot be read",
}


class LinkError(NodeError):
    """A link was refused. Decoding never raises anything else."""

    exit_code = 3
    family = "link"
    REASONS: ClassVar[Mapping[str, str]] = REASONS

    def __init__(self, reason: str, detail: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown link rejection reason {reason!r}")
        super().__init__(detail or REASONS[reason], reason=reason)

    def text(self, detail: str) -> str:
        return f"{self.reason}: {detail}"
