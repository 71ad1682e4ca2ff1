"""One call: a peer connection with one peer, watched until it ends.

A call ends when its connection fails or closes, when it does not connect within
`connect_timeout`, or when nothing has arrived from the peer for `idle_timeout` seconds
(RTCP receiver reports flow every 0.5-1.5 s, so a live peer is never silent that long);
ending releases the peer connection's sockets, tasks and the media attachment. Events
and stats never carry an address."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, InitVar, asdict, dataclass, field
from typing import Literal

from aiortc import RTCPeerConnection

from ..config import CallsSection
from ..ice import IcePolicy, OverlayPeerConnection, ice_connections, selected_pair
from ..peers import Peer
from .events import Event
from .media import Attachment, Receiver

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
POLL = 0.5  # seconds between liveness/stats polls

CallKind = Literal["view", "incoming", "outgoing", "viewing"]
EmitEvent = Callable[[Event], None]


def new_call_id() -> str:
    return os.urandom(6).hex()


@dataclass
class CallStats:
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    rtt_ms: float | None = None
    frames_sent: int | None = None
    frames_received: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(eq=False, repr=False)
class Call:
    """One peer connection with one peer. `kind`: view (the node serves a viewer),
    incoming (a peer called the node), outgoing (the node called a peer), viewing (this
    node watches a peer). It reports through `emit` (call-connected, call-ended) and
    tells its owner it ended through `on_ended`.

    Equality and hashing stay by identity (eq=False); repr stays object's own, so a log
    line can never print the peer or the peer connection by accident."""

    kind: CallKind
    peer: Peer
    pc: OverlayPeerConnection
    policy: IcePolicy
    limits: CallsSection
    _: KW_ONLY
    emit: InitVar[EmitEvent]
    on_ended: InitVar[Callable[[Call], None]]
    attachment: Attachment | None = None
    receiver: Receiver | None = None
    call_id: InitVar[str] = ""
    talk: bool = False  # talkback: the peer's audio plays on this node's speaker (or this node talks)
    id: str = field(init=False)
    started: float = field(init=False, default_factory=time.monotonic)
    connected_at: float | None = field(init=False, default=None)
    ended_reason: str | None = field(init=False, default=None)
    ended: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _emit: EmitEvent = field(init=False)
    _on_ended: Callable[[Call], None] = field(init=False)
    _stats: CallStats = field(init=False, default_factory=CallStats)
    _pair: tuple[str, str] | None = field(init=False, default=None)
    _watch: asyncio.Task[None] | None = field(init=False, default=None)
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _closing: asyncio.Task[None] | None = field(init=False, default=None)

    def __post_init__(self, emit: EmitEvent, on_ended: Callable[[Call], None], call_id: str) -> None:
        self.id = call_id or new_call_id()
        self._emit = emit
        self._on_ended = on_ended

        @self.pc.on("connectionstatechange")
        def _changed() -> None:
            self._wake.set()

    # --- views -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.ended.is_set():
            return "ended"
        return "connected" if self.connected_at is not None else "connecting"

    def stats(self) -> dict[str, object]:
        """The latest stats snapshot (refreshed every POLL seconds while the call runs)."""
        out = self._stats.as_dict()
        out["duration_s"] = round(time.monotonic() - self.started, 3)
        return out

    def selected_pair(self) -> tuple[str, str] | None:
        """(local, remote) overlay addresses of the selected candidate pair."""
        return self._pair or selected_pair(self.pc)

    def describe(self) -> dict[str, object]:
        """For events, status and logs: never an address."""
        return {
            "call": self.id,
            "kind": self.kind,
            "peer": self.peer.name,
            "peer_id": self.peer.node_id,
            "state": self.state,
            "talk": self.talk,
        }

    # --- life cycle --------------------------------------------------------------------

    def start_watch(self) -> None:
        self._watch = asyncio.create_task(self._run_watch(), name=f"call-{self.id}-watch")

    async def _run_watch(self) -> None:
        # Threshold such that a silent peer is noticed within idle_timeout of its last
        # packet even though activity is only sampled every POLL seconds.
        idle_limit = max(POLL, self.limits.idle_timeout - 2 * POLL)
        last_rx = -1
        last_activity = time.monotonic()
        reason = "ended"
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wake.wait(), POLL)
                except TimeoutError:
                    pass
                self._wake.clear()
                now = time.monotonic()
                state = self.pc.connectionState
                if state in ("failed", "closed"):
                    reason = f"connection-{state}"
                    break
                if self.connected_at is None:
                    if state == "connected":
                        self.connected_at = now
                        last_activity = now
                        self._pair = selected_pair(self.pc)
                        self._emit({"event": "call-connected", **self.describe()})
                    elif now - self.started > self.limits.connect_timeout:
                        reason = "connect-timeout"
                        break
                    continue
                rx = await self._refresh_stats()
                if rx is not None:  # RTP/RTCP bytes, plus the peer's ICE consent checks
                    rx += sum(getattr(c, "checks_received", 0) for c in ice_connections(self.pc))
                if rx is not None and rx != last_rx:
                    last_rx = rx
                    last_activity = now
                elif now - last_activity >= idle_limit:
                    reason = "peer-silent"
                    break
        except asyncio.CancelledError:
            return
        except Exception as e:  # a stats or state bug must still end the call
            log.exception("call %s: watcher failed", self.id)
            reason = f"error: {type(e).__name__}"
        self._watch = None  # ending must not cancel the task it runs in
        await self.end(reason)

    async def _refresh_stats(self) -> int | None:
        """Update the snapshot from getStats; returns transport bytes received."""
        try:
            report = await asyncio.wait_for(self.pc.getStats(), 4 * POLL)
        except Exception:
            return None
        s = CallStats()
        rtts = []
        rx = None
        transports = {}
        for item in report.values():
            kind = getattr(item, "type", "")
            if kind == "transport":
                transports[item.id] = item
            elif kind == "outbound-rtp":
                s.packets_sent += item.packetsSent or 0
            elif kind == "inbound-rtp":
                s.packets_received += item.packetsReceived or 0
                s.packets_lost += max(0, item.packetsLost or 0)
            elif kind == "remote-inbound-rtp":
                s.packets_lost += max(0, item.packetsLost or 0)
                if item.roundTripTime is not None:
                    rtts.append(item.roundTripTime)
        for t in transports.values():
            s.bytes_sent += t.bytesSent or 0
            s.bytes_received += t.bytesReceived or 0
            rx = (rx or 0) + (t.bytesReceived or 0)
        if not s.packets_sent and not s.packets_received:
            s.packets_sent = sum(t.packetsSent or 0 for t in transports.values())
            s.packets_received = sum(t.packetsReceived or 0 for t in transports.values())
        if rtts:
            s.rtt_ms = round(1000 * max(rtts), 2)
        s.frames_sent = self.attachment.frames_sent if self.attachment is not None else None
        s.frames_received = _frames_received(self.receiver)
        self._stats = s
        return rx

    async def end(self, reason: str = "ended") -> None:
        """Idempotent: stop media, close the peer connection (sockets), forget the call."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._end(reason), name=f"call-{self.id}-end")
        await asyncio.shield(self._closing)

    async def _end(self, reason: str) -> None:
        self.ended_reason = reason
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        try:
            await self._refresh_stats()
        except Exception:
            pass
        await release(self.pc, self.attachment, self.receiver)
        self.ended.set()
        self._on_ended(self)
        log.debug("call %s with %s ended: %s", self.id, self.peer.name, reason)
        self._emit(
            {
                "event": "call-ended",
                **self.describe(),
                "reason": reason,
                "stats": self.stats(),
            }
        )

    async def wait(self, timeout: float) -> bool:
        """True if the call ended within `timeout` seconds."""
        try:
            await asyncio.wait_for(self.ended.wait(), timeout)
            return True
        except TimeoutError:
            return False


def _frames_received(receiver: Receiver | None) -> int | None:
    if receiver is None:
        return None
    try:
        value = receiver.summary().get("video_frames")
    except Exception:
        return None
    return value if isinstance(value, int) else None


async def release(pc: RTCPeerConnection, attachment: Attachment | None, receiver: Receiver | None) -> None:
    """Stop media (attachment.detach, receiver.close), then close the peer connection
    (its sockets and tasks); each step bounded, none able to stop the others. Also for a
    half-built call that no Call object owns yet."""
    if attachment is not None:
        try:
            attachment.detach()
        except Exception:
            log.exception("detaching %s failed", type(attachment).__name__)
    if receiver is not None:
        try:
            await asyncio.wait_for(receiver.close(), CLOSE_TIMEOUT)
        except Exception:
            log.exception("closing %s failed", type(receiver).__name__)
    try:
        await asyncio.wait_for(pc.close(), CLOSE_TIMEOUT)
    except Exception:
        log.exception("closing a peer connection failed")


__all__ = ["CLOSE_TIMEOUT", "POLL", "Call", "CallKind", "CallStats", "release"]
