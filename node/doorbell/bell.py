"""The doorbell: what a ring does, whoever rang (the GPIO button, or cmd/ring over MQTT).

A ring publishes a `ring` event (for Home Assistant and anyone reading the events),
starts the optional snapshot, and calls every peer named in `[doorbell] call` — each
one must be allowed `call` in the allowlist, exactly as for cmd/call. Rings inside
`hold_off` seconds of the previous one are ignored: a held or hammered button rings
once, and nobody gets called ten times for one visitor."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..config import DoorbellSection
from ..errors import NodeError
from ..peers import Peer, PeerStore

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, object]], None]
PeerCaller = Callable[[Peer], Awaitable[object]]


@dataclass(frozen=True)
class Ring:
    """The outcome of one ring request."""

    rang: bool
    source: str
    calling: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)  # peer -> why it is not called
    held_off: float = 0.0  # seconds since the last ring, when not rung


class Doorbell:
    def __init__(
        self,
        config: DoorbellSection,
        peers: PeerStore | None,
        *,
        call: PeerCaller | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.peers = peers
        self.call_peer = call
        self._clock = clock
        self._last = float("-inf")
        self._listeners: list[EventSink] = []
        self._on_ring: list[Callable[[], object]] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self.rings = 0

    def on_event(self, sink: EventSink) -> None:
        self._listeners.append(sink)

    def on_ring(self, action: Callable[[], object]) -> None:
        """Also run `action` on every ring (e.g. the snapshot); a coroutine is awaited
        in its own task."""
        self._on_ring.append(action)

    def ring(self, source: str) -> Ring:
        """Event loop only. Returns at once; the calls go on in their own tasks."""
        now = self._clock()
        if now - self._last < self.config.hold_off:
            held = now - self._last
            log.info("doorbell: %s ring %.1f s after the last one: held off", source, held)
            return Ring(False, source, held_off=round(held, 1))
        self._last = now
        self.rings += 1
        calling, skipped = self._callees()
        ring = Ring(True, source, tuple(p.name for p in calling), skipped)
        log.info(
            "doorbell: ring (%s)%s", source, f"; calling {', '.join(ring.calling)}" if ring.calling else ""
        )
        self._emit({"event": "ring", "source": source, "calling": list(ring.calling), "at": int(time.time())})
        for action in self._on_ring:
            self._spawn(action)
        for peer in calling:
            self._spawn(functools.partial(self._call, peer))
        return ring

    def _callees(self) -> tuple[list[Peer], dict[str, str]]:
        names = self.config.call
        if not names:
            return [], {}
        if self.call_peer is None or self.peers is None:
            return [], dict.fromkeys(names, "this node makes no calls (MQTT is off)")
        try:
            known = {p.name: p for p in self.peers.load().values()}
        except NodeError as e:
            log.error("doorbell: cannot read the allowlist: %s", e)
            return [], dict.fromkeys(names, "the allowlist cannot be read")
        calling, skipped = [], {}
        for name in names:
            peer = known.get(name)
            if peer is None:
                skipped[name] = "not a peer in this node's allowlist"
            elif not peer.may("call"):
                skipped[name] = "not allowed 'call' in the allowlist"
            else:
                calling.append(peer)
        for name, why in skipped.items():
            log.warning("doorbell: not calling %s: %s", name, why)
        return calling, skipped

    async def _call(self, peer: Peer) -> None:
        assert self.call_peer is not None
        try:
            await self.call_peer(peer)
        except Exception as e:  # the call's own events say what happened to it
            log.warning("doorbell: calling %s failed: %s", peer.name, e)

    def _spawn(self, action: Callable[[], object]) -> None:
        try:
            result = action()
        except Exception:
            log.exception("doorbell: a ring action failed")
            return
        if asyncio.iscoroutine(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _emit(self, event: dict[str, object]) -> None:
        for sink in list(self._listeners):
            try:
                sink(event)
            except Exception:
                log.exception("doorbell: an event listener failed")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
