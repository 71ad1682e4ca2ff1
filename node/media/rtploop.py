"""Packetize once, send to every viewer: the sender hook that shares one access unit's
RTP payloads across viewers, and the RTP send loop it installs per sender — aiortc's own
`RTCRtpSender._run_rtp`, fed ready-made payloads, with the per-packet work that repeats
within an access unit done once per AU. One of the media hooks (re-exported by
hooks.py); every private name used here is listed in node/internals.py."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from struct import Struct

from aiortc import RTCRtpCodecParameters, RTCRtpSender, clock
from aiortc import rtcrtpsender as _rs
from aiortc import rtp as _rtp
from aiortc.codecs import h264 as _h264
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from aiortc.utils import random32, uint32_add

from .source import MediaError

# what aiortc's own RTCRtpSender._run_rtp reads and writes, which the shared-payload
# loop below reads and writes the same way (name-mangled private attributes)
_SENDER_RTP_STATE = (
    "_RTCRtpSender__track",
    "_RTCRtpSender__encoder",
    "_RTCRtpSender__mid",
    "_RTCRtpSender__rtp_header_extensions_map",
    "_RTCRtpSender__rtp_history",
    "_RTCRtpSender__rtp_started",
    "_RTCRtpSender__rtp_exited",
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
    "_enabled",
)
log = logging.getLogger(__name__)
_RTP_HEADER, _EXT_HEADER = Struct("!BBHLL"), Struct("!HH")


# --- sender: packetize once per access unit, send to every viewer -------------------


def packetize(annexb: bytes) -> list[bytes]:
    """aiortc's own FU-A / STAP-A packetization of one Annex-B access unit (what
    H264Encoder.pack does for each sender), so payloads computed once can be shared by
    every viewer and stay byte-identical to what aiortc would send."""
    return _h264.H264Encoder._packetize(_h264.H264Encoder._split_bitstream(annexb))


PayloadFrame = tuple[list[bytes], int]  # RTP payloads of one AU, its 90 kHz timestamp


def hook_sender_payloads(sender: RTCRtpSender, next_frame: Callable[[], Awaitable[PayloadFrame]]) -> None:
    """Replace this sender's RTP loop with one fed by `next_frame` with payloads shared
    by every viewer of an access unit, instead of packing its own copy of the AU.
    What makes the stream this viewer's own stays per sender, done as aiortc's
    `_run_rtp` does it: random sequence number and timestamp origin, SSRC, marker on the
    AU's last packet, abs-send-time and mid extensions, the 128-packet history NACK/RTX
    resend from, the counters RTCP reports and getStats() read. Saved per packet: the
    extensions are serialized and the NTP clock read once per AU (its packets leave back
    to back). Install before the connection starts the sender."""
    for name in _SENDER_RTP_STATE:
        if not hasattr(sender, name):
            raise MediaError(f"aiortc RTCRtpSender has no {name}: the shared-payload sender cannot work")

    sender._run_rtp = lambda codec: run_shared_rtp(sender, codec, next_frame)  # type: ignore[method-assign]


class _SentPacket(RtpPacket):
    """A history entry, as aiortc's loop keeps one per packet for NACK/RTX: an RtpPacket
    whose extensions object is shared by its AU's packets (aiortc builds a fresh one,
    and an empty CSRC list, per packet only to overwrite them)."""

    def __init__(
        self,
        payload_type: int,
        marker: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
        extensions: _rtp.HeaderExtensions,
    ) -> None:
        self.version = 2
        self.marker = marker
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrc: list[int] = []
        self.extensions = extensions
        self.payload = payload
        self.padding_size = 0


async def run_shared_rtp(
    sender: RTCRtpSender, codec: RTCRtpCodecParameters, next_frame: Callable[[], Awaitable[PayloadFrame]]
) -> None:
    state = sender.__dict__
    state["_RTCRtpSender__rtp_started"].set()
    history: dict[int, RtpPacket] = state["_RTCRtpSender__rtp_history"]
    extensions_map = state["_RTCRtpSender__rtp_header_extensions_map"]
    history_size = _rtp.RTP_HISTORY_SIZE
    transport = sender.transport
    payload_type: int = codec.payloadType or 0  # always set once negotiated
    sequence_number = _rs.random_sequence_number()
    timestamp_origin = random32()
    try:
        while True:
            if state["_RTCRtpSender__track"] is None:
                await asyncio.sleep(0.02)
                continue
            payloads, pts90 = await next_frame()
            if not sender._enabled or not payloads:
                continue
            timestamp = uint32_add(timestamp_origin, pts90)
            ssrc = sender._ssrc
            extensions = _rtp.HeaderExtensions()
            extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
            extensions.mid = state["_RTCRtpSender__mid"]
            profile, value = extensions_map.set(extensions)
            ext = _EXT_HEADER.pack(profile, len(value) >> 2) + value if value else b""
            first = 0x90 if value else 0x80  # version 2, extension bit
            last = len(payloads) - 1
            octets = 0
            for i, payload in enumerate(payloads):
                marker = 1 if i == last else 0
                history[sequence_number % history_size] = _SentPacket(
                    payload_type, marker, sequence_number, timestamp, ssrc, payload, extensions
                )
                header = _RTP_HEADER.pack(first, marker << 7 | payload_type, sequence_number, timestamp, ssrc)
                await transport._send_rtp(b"".join((header, ext, payload)))
                octets += len(payload)
                sequence_number = (sequence_number + 1) & 0xFFFF
            state["_RTCRtpSender__ntp_timestamp"] = clock.current_ntp_time()
            state["_RTCRtpSender__rtp_timestamp"] = timestamp
            state["_RTCRtpSender__octet_count"] += octets
            state["_RTCRtpSender__packet_count"] += len(payloads)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:
        # like aiortc: the exit event must be set or RTCRtpSender.stop() hangs
        log.warning("RTCRtpSender(video) %s", traceback.format_exc())
    track = state["_RTCRtpSender__track"]
    if track is not None:
        track.stop()
        state["_RTCRtpSender__track"] = None
    state["_RTCRtpSender__encoder"] = None
    state["_RTCRtpSender__rtp_exited"].set()
