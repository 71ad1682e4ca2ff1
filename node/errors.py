"""The root of the error tree: every error a person or a peer may see.

Each error has a stable `reason` code and two texts:
- `detail` (and `str(e)`): what happened, for this node's log and the CLI; it may name
  paths or underlay addresses, so it never leaves the device;
- `public`: the fixed text for the reason, from the family's `REASONS` table, the only
  text that may go off the device (MQTT replies, events, error links' messages).

Families (each defined next to its code, each a subclass of NodeError):
  LinkError       node.links.errors       a link was refused (verification, trust)
  TransportError  node.transports.errors  a request over a transport failed
  CallError       node.calls.errors       a call could not be made or was refused
  PrivacyError    here                    an address would leave the overlay: nothing sent
  DoorbellError   node.doorbell.errors    cmd/ring refused (too soon, no doorbell)
  SnapshotError   node.media.snapshot     cmd/snapshot refused or failed
Anything else a module raises for people (OverlayError, MediaError, ...) is a plain
NodeError: its reason is `unavailable`. docs/operations.md's reason table is generated
from these tables (`python -m node.errors`); a test keeps it current."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

UNAVAILABLE = "unavailable"
HANDLER_ERROR = "handler-error"


class NodeError(Exception):
    """A user-facing error: the CLI prints it and exits non-zero (no traceback)."""

    exit_code = 1
    family = "node"
    REASONS: ClassVar[Mapping[str, str]] = {UNAVAILABLE: "the node could not place the call; see its log"}
    default_reason = UNAVAILABLE

    def __init__(self, detail: str = "", *, reason: str | None = None):
        self.reason = reason or self.default_reason
        self.detail = detail or self.public
        super().__init__(self.text(detail))

    def text(self, detail: str) -> str:
        """str(e): the detail (families whose codes matter to people prefix the reason)."""
        return detail

    @classmethod
    def public_table(cls) -> Mapping[str, str]:
        """The reasons whose fixed text this family may send (its own table by default)."""
        return cls.REASONS

    @property
    def public_reason(self) -> str:
        """The reason as sent off the device: one the family knows, else `unavailable`
        (a peer's unknown code, or an error with no family of its own)."""
        return self.reason if self.reason in self.public_table() else UNAVAILABLE

    @property
    def public(self) -> str:
        return self.public_table().get(self.reason) or NodeError.REASONS[UNAVAILABLE]

    def to_dict(self) -> dict[str, str]:
        """{"reason", "message"} with the detailed message (stays on the device)."""
        return {"reason": self.reason, "message": self.detail}


class PrivacyError(NodeError):
    """An SDP or a candidate would break the overlay-only rule: nothing is sent."""

    family = "privacy"
    REASONS: ClassVar[Mapping[str, str]] = {
        "privacy": "the node refused an SDP not confined to the overlay (see its log)"
    }
    default_reason = "privacy"


# The message for an exception that is not a NodeError (a bug): never its own text.
HANDLER_ERROR_PUBLIC = "the node failed while handling the link; see its log"


def public_error(exc: BaseException) -> dict[str, str]:
    """{"reason", "message"} safe to publish off the device (MQTT replies and events):
    the message is always the fixed text for the reason, never the exception's own
    text, which may carry underlay addresses. Callers log the detail."""
    if isinstance(exc, NodeError):
        return {"reason": exc.public_reason, "message": exc.public}
    return {"reason": HANDLER_ERROR, "message": HANDLER_ERROR_PUBLIC}


def error_info(exc: BaseException) -> dict[str, str]:
    """{"reason", "message"} with the detail, for records that stay on this device (the
    file drop's reason files): a NodeError keeps its reason; anything else is a
    handler-error naming its type (never a traceback, never the link's content)."""
    if isinstance(exc, NodeError):
        return exc.to_dict()
    message = str(exc) or type(exc).__name__
    return {"reason": HANDLER_ERROR, "message": f"{type(exc).__name__}: {message}"[:500]}


def families() -> list[type[NodeError]]:
    """Every error family, in the order of docs/operations.md's table."""
    from .calls.errors import CallError
    from .doorbell.errors import DoorbellError
    from .links.errors import LinkError
    from .media.snapshot import SnapshotError
    from .transports.errors import TransportError

    return [LinkError, TransportError, CallError, PrivacyError, DoorbellError, SnapshotError, NodeError]


def render_reason_table() -> str:
    """The reason table of docs/operations.md, from the families' own tables."""
    lines = ["| reason | raised by | message sent off the device |", "|---|---|---|"]
    seen: set[tuple[str, str]] = set()
    for family in families():
        for reason, text in family.REASONS.items():
            if (reason, text) in seen:
                continue
            seen.add((reason, text))
            lines.append(f"| `{reason}` | {family.family} | {text} |")
    lines.append(f"| `{HANDLER_ERROR}` | any (a bug) | {HANDLER_ERROR_PUBLIC} |")
    return "\n".join(lines) + "\n"


__all__ = [
    "HANDLER_ERROR",
    "UNAVAILABLE",
    "NodeError",
    "PrivacyError",
    "error_info",
    "families",
    "public_error",
    "render_reason_table",
]

if __name__ == "__main__":
    print(render_reason_table(), end="")
