"""What a peer connection receives, for everything that consumes it (MediaReceiver, the
web relay, talkback): each incoming track once, with its RTP receiver, and a track's
frames (or packets) until it ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

TrackCallback = Callable[[MediaStreamTrack, RTCRtpReceiver | None], None]


def each_track(pc: RTCPeerConnection, callback: TrackCallback) -> None:
    """`callback(track, receiver)` once for each track `pc` receives: those to come, and
    those it has already (answering an offer, the `track` events fired during
    setRemoteDescription; the receivers only start after ICE/DTLS, so hooking them now
    is still in time)."""
    seen: set[int] = set()

    def on_track(track: MediaStreamTrack) -> None:
        if id(track) in seen:
            return
        seen.add(id(track))
        receiver = next((t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None)
        callback(track, receiver)

    pc.on("track", on_track)
    for transceiver in pc.getTransceivers():
        if transceiver.receiver.track is not None:
            on_track(transceiver.receiver.track)


class Pumps:
    """The tasks that consume one peer connection's tracks: started by `spawn`, all
    cancelled and awaited by `close`."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[None]] = set()

    def spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def request_keyframe(receivers: list[RTCRtpReceiver]) -> bool:
    """Send a PLI to each video sender behind `receivers`; True if any was sent."""
    from . import hooks

    sent = False
    for receiver in receivers:
        sent = await hooks.send_pli(receiver) or sent
    return sent


async def received(track: MediaStreamTrack) -> AsyncIterator[object]:
    """What `track.recv()` returns (a decoded frame, or an av.Packet when the receiver is
    hooked for passthrough), until the track ends."""
    while True:
        try:
            item = await track.recv()
        except MediaStreamError:
            return
        yield item


__all__ = ["Pumps", "TrackCallback", "each_track", "received", "request_keyframe"]
