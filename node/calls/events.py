"""The event stream of a node's calls: call-started, call-connected, call-ended and
rejected, handed to every subscriber (the log, MQTT events, the systemd status)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Event = dict[str, object]
EventCallback = Callable[[Event], object]  # may return a coroutine: it is run as a task


class CallEvents:
    def __init__(self) -> None:
        self._callbacks: list[EventCallback] = []
        self.pending: set[asyncio.Future[object]] = set()  # referenced until done (else GC may drop them)

    def subscribe(self, callback: EventCallback) -> None:
        self._callbacks.append(callback)

    def emit(self, event: Event) -> None:
        event.setdefault("at", int(time.time()))
        for cb in list(self._callbacks):
            try:
                result = cb(event)
                if asyncio.iscoroutine(result):
                    task = asyncio.ensure_future(result)
                    self.pending.add(task)
                    task.add_done_callback(self.pending.discard)
            except Exception:
                log.exception("event callback failed")


__all__ = ["CallEvents", "Event", "EventCallback"]
