"""The doorbell's refusals, as a family of the node's error tree: a stable reason and a
fixed text that may leave the node (a cmd/ring reply, a rejected event)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ..errors import NodeError


class DoorbellError(NodeError):
    family = "doorbell"
    REASONS: ClassVar[Mapping[str, str]] = {
        "too-soon": "the doorbell rang moments ago ([doorbell] hold_off)",
        "no-doorbell": "this node has no doorbell",
    }
    default_reason = "no-doorbell"


__all__ = ["DoorbellError"]
