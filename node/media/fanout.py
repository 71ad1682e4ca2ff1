"""One encoded source, many viewers.

Every viewer has a bounded queue. A viewer starts on an IDR (one is requested when it
joins); when its queue overflows (it stopped reading, or its sender is stuck) its queue
is emptied, it skips to the next IDR and asks for one. Pushing never waits on a viewer,
so a slow viewer never slows the others. Keyframe requests from joins, overflows and
PLI/FIR of all viewers go through one rate limiter to the one encoder."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable

from .source import AccessUnit, EncodedVideoSource

log = logging.getLogger(__name__)


class KeyframeLimiter:
    """At most one keyframe request per `min_interval` seconds reaches `request`; a request
    inside the interval is deferred to its end (coalesced), never lost. Event-loop only."""

    def __init__(
        self,
        request: Callable[[], None],
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._request = request
        self._min_interval = min_interval
        self._clock = clock
        self._last = float("-inf")
        self._deferred: asyncio.TimerHandle | None = None
        self.asked = 0  # requests received
        self.sent = 0  # requests forwarded to the source

    def __call__(self) -> None:
        self.asked += 1
        if self._deferred is not None:
            return  # one is already on its way
        wait = self._last + self._min_interval - self._clock()
        if wait <= 0:
            self._fire()
        else:
            self._deferred = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._deferred = None
        self._last = self._clock()
        self.sent += 1
        try:
            self._request()
        except Exception:
            log.exception("keyframe request failed")

    def cancel(self) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None


class Viewer:
    """A viewer's bounded queue of access units."""

    _ids = itertools.count(1)

    def __init__(self, fanout: Fanout, queue_size: int, name: str = ""):
        self.name = name or f"viewer-{next(self._ids)}"
        self._fanout = fanout
        self._queue: asyncio.Queue[AccessUnit | None] = asyncio.Queue(maxsize=queue_size)
        self.waiting_for_idr = True
        self.closed = False
        self.delivered = 0  # AUs handed to the queue
        self.dropped = 0  # AUs thrown away on overflow
        self.skipped = 0  # AUs not queued while waiting for an IDR
        self.overflows = 0

    def offer(self, au: AccessUnit) -> None:
        if self.closed:
            return
        if self.waiting_for_idr:
            if not au.keyframe:
                self.skipped += 1
                return
            self.waiting_for_idr = False
        try:
            self._queue.put_nowait(au)
            self.delivered += 1
        except asyncio.QueueFull:
            # Decoding from a P-frame after a gap shows garbage: drop everything queued
            # and resume on the next IDR (this one, if it is one; else ask for one now).
            self.overflows += 1
            while not self._queue.empty():
                self._queue.get_nowait()
                self.dropped += 1
            if au.keyframe:
                self._queue.put_nowait(au)
                self.delivered += 1
                return
            self.dropped += 1
            self.waiting_for_idr = True
            self._fanout.request_keyframe()

    async def get(self) -> AccessUnit | None:
        """The next access unit, or None once the viewer is closed."""
        if self.closed and self._queue.empty():
            return None
        return await self._queue.get()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._fanout.leave(self)
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(None)

    def stats(self) -> dict[str, object]:
        return {
            "viewer": self.name,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "overflows": self.overflows,
            "queued": self._queue.qsize(),
        }


class Fanout:
    def __init__(
        self,
        source: EncodedVideoSource,
        queue_size: int = 30,
        keyframe_interval: float = 0.5,
        stall_timeout: float | None = 10.0,
        max_backoff: float = 60.0,
    ):
        """`stall_timeout`: a source that delivers nothing for this long is restarted,
        with exponential backoff up to `max_backoff` (None: never; sources that heal
        themselves, like RTSP's reconnect loop, set `self_healing`)."""
        self.source = source
        self.queue_size = queue_size
        self._viewers: set[Viewer] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.keyframes = KeyframeLimiter(source.request_keyframe, keyframe_interval)
        self.pushed = 0
        self.first_au_event = asyncio.Event()
        self.stall_timeout = None if getattr(source, "self_healing", False) else stall_timeout
        self.max_backoff = max_backoff
        self.restarts = 0
        self._last_push = time.monotonic()
        self._watchdog: asyncio.Future[None] | None = None

    @property
    def viewers(self) -> list[Viewer]:
        return list(self._viewers)

    def leave(self, viewer: Viewer) -> None:
        """A viewer that closed is no longer fed."""
        self._viewers.discard(viewer)

    def watchdog_ended(self) -> bool:
        """True when the stall watchdog ran and stopped (it never should while started)."""
        return self._watchdog is not None and self._watchdog.done()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._last_push = time.monotonic()
        self.source.start(self._push_threadsafe)
        if self.stall_timeout:
            self._watchdog = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        """Restart a source that stopped delivering (a crashed camera thread, an
        encoder that hung), waiting longer after each failed attempt."""
        stall = self.stall_timeout
        if not stall:  # started only with a stall timeout
            return
        backoff = stall
        while True:
            await asyncio.sleep(min(1.0, stall / 4))
            retrying = getattr(self.source, "retrying", None)
            if callable(retrying) and retrying():  # the source retries its own start
                self._last_push = time.monotonic()
                continue
            if time.monotonic() - self._last_push < backoff:
                if time.monotonic() - self._last_push < stall:
                    backoff = stall  # delivering again: reset the backoff
                continue
            self.restarts += 1
            log.warning(
                "%s source delivered nothing for %.0f s: restarting it (restart %d)",
                self.source.kind,
                time.monotonic() - self._last_push,
                self.restarts,
            )
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self.source.stop)
                self.source.start(self._push_threadsafe)
                self.request_keyframe()
            except Exception as e:
                log.error("%s source restart failed: %s", self.source.kind, e)
            self._last_push = time.monotonic()
            backoff = min(backoff * 2, self.max_backoff)

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        self.keyframes.cancel()
        # the source joins its threads: keep the event loop free meanwhile
        await asyncio.get_running_loop().run_in_executor(None, self.source.stop)
        for viewer in list(self._viewers):
            viewer.close()

    def _push_threadsafe(self, au: AccessUnit) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.push, au)
            except RuntimeError:  # loop closing while the source thread still runs
                pass

    def push(self, au: AccessUnit) -> None:
        """Give one access unit to every viewer (event-loop thread)."""
        self.pushed += 1
        self._last_push = time.monotonic()
        self.first_au_event.set()
        for viewer in list(self._viewers):
            viewer.offer(au)

    def join(self, name: str = "") -> Viewer:
        viewer = Viewer(self, self.queue_size, name)
        self._viewers.add(viewer)
        self.request_keyframe()
        return viewer

    def request_keyframe(self) -> None:
        self.keyframes()
