"""The seams every transport shares."""

from __future__ import annotations

from typing import Protocol


class Publish(Protocol):
    """Publish one message (MQTT's shape): all that status, events and extensions such
    as Home Assistant discovery need from a connection."""

    def __call__(self, topic: str, payload: bytes | str, *, qos: int = ..., retain: bool = ...) -> object: ...


__all__ = ["Publish"]
