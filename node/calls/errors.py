"""Why a call could not be made or was refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import ClassVar, TypeVar

from ..errors import NodeError

T = TypeVar("T")

SETUP_TIMEOUT = 10.0  # seconds for each local setup step (overlay lookup, gathering, SDP)


# What a call failure may say where others read it (MQTT replies, events, the message of
# an error link's reason): one fixed text per reason, because an exception's own text
# can name underlay addresses or paths.
CALL_REASONS: dict[str, str] = {
    "busy": "the node already serves its maximum number of calls; try again later",
    "timeout": "the call was not set up in time",
    "stopping": "the node is shutting down; try again shortly",
    "bad-offer": "the offer was not acceptable (see the node's log)",
    "bad-reply": "the peer's reply was not an answer (see the node's log)",
    "no-candidate": "no candidate on the overlay address (see the node's log)",
    "no-permission": "the peer is not allowed this call in the allowlist",
    "no-media": "the node has no camera or microphone to share",
    "no-talk": "the peer is not allowed to talk to this node's speaker",
    "no-speaker": "the node has no speaker for talkback",
    "talk-busy": "another peer is talking on the node's speaker; try again when they stop",
    "no-viewer": "nobody has the viewer page open on the called node",
    "no-answer": "nobody answered the call in time",
    "declined": "the call was declined",
    "cancelled": "the caller stopped calling (answered elsewhere)",
    "wrong-peer": "the reply was not signed by the peer that was asked",
    "privacy": "the node refused an SDP not confined to the overlay (see its log)",
    "unavailable": "the node could not place the call; see its log",
    "internal": "the node failed while placing the call; see its log",
}


class CallError(NodeError):
    """A call could not be made or was refused: `code` (the reason) is stable (busy,
    timeout, ...); a peer's error link may carry a code this node does not know."""

    exit_code = 5
    family = "call"
    REASONS: ClassVar[Mapping[str, str]] = CALL_REASONS

    def __init__(self, code: str, message: str):
        self.message = message
        super().__init__(message, reason=code)

    def text(self, detail: str) -> str:
        return f"{self.reason}: {detail}"

    @property
    def code(self) -> str:
        return self.reason


async def within(seconds: float, what: str, aw: Awaitable[T]) -> T:
    """`aw`, or CallError('timeout') naming `what` after `seconds`."""
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise CallError("timeout", f"{what} took longer than {seconds:.0f} s") from None


__all__ = ["CALL_REASONS", "SETUP_TIMEOUT", "CallError", "within"]
