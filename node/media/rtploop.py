"""The RTP send loop of a viewer's sender when payloads are shared (installed by
hooks.hook_sender_payloads, which checks every private attribute used here): aiortc's
own `RTCRtpSender._run_rtp`, fed ready-made payloads, with the per-packet work that
repeats within an access unit done once per AU."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from struct import Struct

from aiortc import RTCRtpCodecParameters, RTCRtpSender, clock
from aiortc import rtcrtpsender as _rs
from aiortc import rtp as _rtp
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from aiortc.utils import random32, uint32_add

from .hooks import PayloadFrame

log = logging.getLogger(__name__)
_RTP_HEADER, _EXT_HEADER = Struct("!BBHLL"), Struct("!HH")


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
