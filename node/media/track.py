"""The encoded video track. The publisher's senders take next_payloads(): the AU's RTP
payloads, packetized once for all viewers. Any other consumer calls recv() and gets an
av.Packet holding one Annex-B access unit, which aiortc's sender only packetizes
(RTCRtpSender._next_encoded_frame → H264Encoder.pack); no frame is ever encoded."""

from __future__ import annotations

import fractions

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.stream import Stream

from .fanout import Viewer
from .source import AccessUnit

MICROSECONDS = fractions.Fraction(1, 1_000_000)


def to_90khz(pts_us: int) -> int:
    """aiortc's convert_timebase(pts_us, 1/1e6, 1/90000) in integers (it truncates the
    Fraction; pts here is never negative, so floor division is the same number)."""
    return pts_us * 9 // 100


class EncodedVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, viewer: Viewer, frame_us: int = 33_333):
        super().__init__()
        self.viewer = viewer
        self._frame_us = frame_us
        self._offset: int | None = None
        self._last_pts = -1
        self.sent = 0

    def _pts(self, source_pts: int) -> int:
        """Monotonic pts from 0: a source restart (camera encoder, RTSP reconnect) must
        not move the RTP clock backwards."""
        if self._offset is None:
            self._offset = -source_pts
        pts = source_pts + self._offset
        if pts <= self._last_pts:
            self._offset += self._last_pts + self._frame_us - pts
            pts = self._last_pts + self._frame_us
        self._last_pts = pts
        return pts

    async def _next(self) -> AccessUnit:
        if self.readyState != "live":
            raise MediaStreamError
        au = await self.viewer.get()
        if au is None:
            self.stop()
            raise MediaStreamError
        return au

    async def next_payloads(self) -> tuple[list[bytes], int]:
        """The next AU as RTP payloads shared with the other viewers, and this viewer's
        own 90 kHz timestamp for it (what the shared-payload sender hook sends)."""
        au = await self._next()
        self.sent += 1
        return au.rtp_payloads, to_90khz(self._pts(au.pts_us))

    async def recv(self) -> av.Packet[Stream]:  # encoded, passed through
        au = await self._next()
        packet = av.Packet(au.data)
        packet.pts = self._pts(au.pts_us)
        packet.time_base = MICROSECONDS
        self.sent += 1
        return packet

    def stop(self) -> None:
        super().stop()
        self.viewer.close()
