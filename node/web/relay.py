"""The local relay between a browser page and a camera, without decoding.

Two legs, two policies. The camera leg is an ordinary signed view-request made by this
node's CallManager (overlay-only, exactly like `media-node view`). The browser leg is a
peer connection confined to this host (node.web.hostpolicy). In between, encoded media
is only moved: the camera leg's receivers are hooked to hand out H.264 access units and
Opus packets as they arrived (node.media.hooks.PassthroughDecoder), and `PacketTrack`s
feed them to the browser leg's senders, which only packetize them again. A talking
page's Opus goes the other way the same way, while its push-to-talk is held.

Cost: one more RTP hop on this machine (depacketize, copy, packetize: no codec work), so
the added latency is the loopback hop plus the video frame's reassembly (released on
its marker bit); `media-node bench` measures it. Keyframes: a PLI from the browser is
forwarded to the camera as a PLI."""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import av
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..media import hooks
from ..media.annexb import is_idr
from ..media.incoming import Pumps, each_track, received, request_keyframe

log = logging.getLogger(__name__)

AUDIO_CLOCK = fractions.Fraction(1, 48000)

if TYPE_CHECKING:
    Packet = av.Packet[Any]  # PyAV's stubs make it generic; at run time it is not
else:
    Packet = av.Packet
PacketSink = Callable[[Packet], None]


class PacketTrack(MediaStreamTrack):
    """A track of encoded packets (av.Packet) for an aiortc sender: it packetizes them
    without encoding. Nothing is queued before the sender first asks (its connection is
    up): stale media would play late and in a burst. A bounded queue: on overflow the
    oldest go (audio), or the queue is emptied and `need_keyframe` is called (video
    must restart on an IDR; it is also called when the sender starts)."""

    def __init__(self, kind: str, maxsize: int, need_keyframe: Callable[[], None] | None = None):
        super().__init__()
        self.kind = kind
        self._queue: deque[Packet] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._need_keyframe = need_keyframe
        self._started = False
        self._base: int | None = None
        self._last = -1
        self._wait_idr = kind == "video"
        self.sent = 0
        self.dropped = 0

    def push(self, packet: Packet) -> None:
        if self.readyState != "live" or not self._started:
            return
        if self._wait_idr:
            if not is_idr(bytes(packet)):
                self.dropped += 1
                return
            self._wait_idr = False
        if len(self._queue) >= self._maxsize:
            if self.kind == "video":
                self.dropped += len(self._queue)
                self._queue.clear()
                self._wait_idr = not is_idr(bytes(packet))
                if self._need_keyframe is not None:
                    self._need_keyframe()
                if self._wait_idr:
                    return
            else:
                self._queue.popleft()
                self.dropped += 1
        self._queue.append(packet)
        self._ready.set()

    async def recv(self) -> Packet:
        if not self._started:  # the sender runs: its connection is up
            self._started = True
            if self._need_keyframe is not None:
                self._need_keyframe()
        while self.readyState == "live":
            if self._queue:
                packet = self._queue.popleft()
                # the peer's RTP clock starts anywhere; this sender's starts at 0
                pts = int(packet.pts or 0)
                if self._base is None:
                    self._base = pts
                pts = max(pts - self._base, self._last + 1)
                self._last = pts
                packet.pts = pts
                self.sent += 1
                return packet
            self._ready.clear()
            await self._ready.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class PacketReceiver:
    """Consumes a peer connection's remote tracks as encoded packets (no decoding) and
    hands each to the sink of its kind (`video_sink`, `audio_sink`; None drops). Create
    it before setRemoteDescription, or right after (aiortc starts receivers only once
    ICE and DTLS are up)."""

    def __init__(self, pc: RTCPeerConnection):
        hooks.check_internals()
        self.pc = pc
        self.video_sink: PacketSink | None = None
        self.audio_sink: PacketSink | None = None
        self.video_frames = 0
        self.audio_frames = 0
        self._receivers: list[RTCRtpReceiver] = []
        self._pumps = Pumps()
        each_track(pc, self._on_track)

    def _on_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver | None) -> None:
        if receiver is None or track.kind not in ("audio", "video"):
            return
        video = track.kind == "video"
        clock = hooks.VIDEO_CLOCK if video else AUDIO_CLOCK
        hooks.hook_receiver(receiver, lambda codec: hooks.PassthroughDecoder(None, clock), video=video)
        if video:
            self._receivers.append(receiver)
        self._pumps.spawn(self._pump(track, video))

    async def _pump(self, track: MediaStreamTrack, video: bool) -> None:
        async for packet in received(track):
            if not isinstance(packet, av.Packet):
                continue  # not hooked in time: a decoded frame cannot be relayed
            if video:
                self.video_frames += 1
            else:
                self.audio_frames += 1
            sink = self.video_sink if video else self.audio_sink
            if sink is not None:
                sink(packet)

    async def request_keyframe(self) -> bool:
        return await request_keyframe(self._receivers)

    def summary(self) -> dict[str, object]:
        return {"video_frames": self.video_frames, "audio_frames": self.audio_frames}

    async def close(self) -> None:
        await self._pumps.close()


__all__ = ["AUDIO_CLOCK", "PacketReceiver", "PacketTrack"]
