"""Packetize once, send to every viewer: the sender hook that shares one access unit's
RTP payloads across viewers, and the RTP send loop it installs per sender — aiortc's own
`RTCRtpSender._run_rtp`, fed ready-made payloads, with the per-packet work that repeats
within an access unit done once per AU, and each packet protected and sent in one
synchronous step instead of aiortc's four coroutine levels (RTCDtlsTransport._send_rtp →
RTCIceTransport._send → aioice Connection.sendto → StunProtocol.send_data). One of the
media hooks (re-exported by hooks.py); every private name used here is listed in
node/internals.py."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from asyncio import selector_events
from collections.abc import Awaitable, Callable, Iterator, Mapping
from struct import Struct
from typing import Any

from aiortc import RTCRtpCodecParameters, RTCRtpSender
from aiortc import rtcrtpsender as _rs
from aiortc import rtp as _rtp
from aiortc.codecs import h264 as _h264
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import RtpPacket
from aiortc.utils import random32, uint32_add
from pylibsrtp import ERRORS as SRTP_ERRORS
from pylibsrtp import SRTP_MAX_TRAILER_LEN, Session
from pylibsrtp import Error as SrtpError
from pylibsrtp._binding import ffi as srtp_ffi
from pylibsrtp._binding import lib as srtp_lib

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
# what RTCDtlsTransport._send_rtp and the aioice send chain under it read (the direct
# send path below does the same): the state, the outbound SRTP session, the selected
# pair, and the transport counters getStats() reports
_DTLS_SEND_STATE = (
    "_state",
    "_tx_srtp",
    "transport",
    "_RTCDtlsTransport__tx_bytes",
    "_RTCDtlsTransport__tx_packets",
)
log = logging.getLogger(__name__)
_RTP_HEADER, _EXT_HEADER = Struct("!BBHLL"), Struct("!HH")
_CONNECTED = DtlsState.CONNECTED
# asyncio's own UDP transport (the default loop's), which copies what it cannot send at once
_SELECTOR_DATAGRAM: Any = vars(selector_events)["_SelectorDatagramTransport"]


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
    to back), a history entry is built only when a NACK asks for it, and each packet is
    protected and sent in plain calls (`_DirectSend`), not four coroutine levels.
    Install before the connection starts the sender."""
    for name in _SENDER_RTP_STATE:
        if not hasattr(sender, name):
            raise MediaError(f"aiortc RTCRtpSender has no {name}: the shared-payload sender cannot work")
    for name in _DTLS_SEND_STATE:
        if not hasattr(sender.transport, name):
            raise MediaError(f"aiortc RTCDtlsTransport has no {name}: the shared-payload sender cannot work")

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


# one access unit as sent by one sender: its first sequence number, payloads, RTP
# timestamp, SSRC, payload type, and its header extensions' mid and abs-send-time
_SentAu = tuple[int, list[bytes], int, int, int, str | None, int]


class _History(Mapping[int, RtpPacket]):
    """The sender's NACK/RTX history, in place of aiortc's dict of one RtpPacket per
    packet: each of the RTP_HISTORY_SIZE slots (sequence number % size, as aiortc indexes
    it) refers to the access unit its packet belonged to, and the RtpPacket is built
    only when asked for (aiortc's `_retransmit` reads `history.get(seq % size)` and
    checks the entry's sequence number, which is the slot's latest packet)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.slots: list[_SentAu | None] = [None] * size

    def __getitem__(self, slot: int) -> RtpPacket:
        if not 0 <= slot < self.size or (au := self.slots[slot]) is None:
            raise KeyError(slot)
        first, payloads, timestamp, ssrc, payload_type, mid, abs_send_time = au
        size, last = self.size, len(payloads) - 1
        k = (slot - first) % size  # the AU's first packet in this slot...
        k += (last - k) // size * size  # ...and its last: the one written last
        marker = 1 if k == last else 0
        seq = (first + k) & 0xFFFF
        extensions = _rtp.HeaderExtensions(mid=mid, abs_send_time=abs_send_time)
        return _SentPacket(payload_type, marker, seq, timestamp, ssrc, payloads[k], extensions)

    def __iter__(self) -> Iterator[int]:
        return (i for i, au in enumerate(self.slots) if au is not None)

    def __len__(self) -> int:
        return sum(1 for au in self.slots if au is not None)


class _Extensions:
    """One sender's serialized header extensions (mid and abs-send-time, what aiortc's
    loop sets on a video packet), with the RFC 5285 header before them, as
    HeaderExtensionsMap.set serializes them. Serialized once with abs-send-time 0 and
    once with 0xFFFFFF: where the two differ in exactly three bytes, only those change
    per AU; otherwise (an extension layout this does not know) every AU is serialized."""

    def __init__(self, extensions_map: _rtp.HeaderExtensionsMap, mid: str | None) -> None:
        self.map, self.mid = extensions_map, mid
        low, high = self.serialize(0), self.serialize(0xFFFFFF)
        self.template = low
        differ = [i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b]
        if low == high:
            self.offset: int | None = None  # no abs-send-time negotiated: always the same
        elif len(low) == len(high) and len(differ) == 3 and differ[2] - differ[0] == 2:
            self.offset = differ[0]
        else:
            self.offset, self.template = -1, b""

    def serialize(self, abs_send_time: int) -> bytes:
        extensions = _rtp.HeaderExtensions(mid=self.mid, abs_send_time=abs_send_time)
        profile, value = self.map.set(extensions)
        return _EXT_HEADER.pack(profile, len(value) >> 2) + value if value else b""

    def at(self, abs_send_time: int) -> bytes:
        offset = self.offset
        if offset is None:
            return self.template
        if offset < 0:
            return self.serialize(abs_send_time)
        t = self.template
        return t[:offset] + abs_send_time.to_bytes(3, "big") + t[offset + 3 :]


_NTP_UNIX_EPOCH_US = 2_208_988_800 * 1_000_000  # 1900-01-01 to 1970-01-01


def ntp_from_unix_us(us: int) -> int:
    """aiortc's clock.datetime_to_ntp of the UTC time `us` microseconds after the Unix
    epoch (aiortc reads the clock as a datetime; this reads time.time_ns)."""
    seconds, micro = divmod(us + _NTP_UNIX_EPOCH_US, 1_000_000)
    return (seconds << 32) | ((micro << 32) // 1_000_000)


def _ntp_now() -> int:
    return ntp_from_unix_us(time.time_ns() // 1000)


class _DirectSend:
    """What RTCDtlsTransport._send_rtp does for one RTP packet, and the aioice chain
    under it (RTCIceTransport._send → Connection.send → Connection.sendto →
    StunProtocol.send_data → the pair's datagram transport), as plain calls: SRTP
    protect in pylibsrtp's own buffer of the transport's outbound session (as
    Session.protect does, without its per-packet allocation and two copies), then a
    send on the nominated pair's socket, to its remote address (the only one aioice
    would send to; confinement decided which pairs exist). Kept per sender and checked
    against the live state before every AU (`current`): a transport that is no longer
    connected, or has no pair, fails as aiortc's own path does (ConnectionError)."""

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        if dtls._state is not _CONNECTED:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            raise ConnectionError("Cannot send data, not connected")
        self.pair = pair
        # asyncio.DatagramTransport; the selector one also has _sock and the write buffer
        datagrams: Any = pair.protocol.transport
        self.datagrams = datagrams
        self.sendto = datagrams.sendto
        self.addr = pair.remote_addr
        # asyncio's selector transport: while nothing waits in its buffer, a datagram
        # goes straight to its socket (what its sendto does first); it keeps a bytes
        # copy of what it buffers, so a view of the SRTP buffer is safe there. Any other
        # transport gets its own bytes through its own sendto.
        selector = type(datagrams) is _SELECTOR_DATAGRAM and datagrams.get_extra_info("peername") is None
        self.copy = not selector
        self.sock_sendto = datagrams._sock.sendto if selector else None
        session: Session = dtls._tx_srtp
        self.session = session
        self.cdata = session._cdata
        self.view = memoryview(session._buffer)
        self.room = len(self.view) - SRTP_MAX_TRAILER_LEN
        self.srtp = session._srtp[0]
        self.length = srtp_ffi.new("int *")

    def current(self, dtls: RTCDtlsTransport) -> bool:
        """Still what `dtls` would send with: connected, same SRTP session and pair."""
        return (
            dtls._state is _CONNECTED
            and dtls._tx_srtp is self.session
            and dtls.transport._connection._nominated.get(1) is self.pair
        )

    def send_au(self, au: _SentAu, first: int, ext: bytes, history: _History) -> tuple[int, int]:
        """Send one AU's packets back to back: what aiortc's RtpPacket.serialize makes
        of each (header, then `ext`, the serialized extensions, then the payload; the
        marker on the last), protected and sent; each packet's history slot refers to
        `au`. Returns (payload octets, bytes sent)."""
        sequence_number, payloads, timestamp, ssrc, payload_type, _, _ = au
        view, cdata, srtp, length, sendto, addr = (
            self.view,
            self.cdata,
            self.srtp,
            self.length,
            self.sendto,
            self.addr,
        )
        slots, size = history.slots, history.size
        copy, protect, pack = self.copy, srtp_lib.srtp_protect, _RTP_HEADER.pack_into
        datagrams = self.datagrams
        direct = self.sock_sendto
        if direct is not None and (datagrams.get_write_buffer_size() or datagrams.is_closing()):
            direct = None  # queued datagrams go first: through the transport, in order
        body = _RTP_HEADER.size + len(ext)
        view[_RTP_HEADER.size : body] = ext  # SRTP leaves the header clear: once per AU
        last = len(payloads) - 1
        octets = sent = 0
        for i, payload in enumerate(payloads):
            packet_size = body + len(payload)
            if packet_size > self.room:
                raise ValueError("packet is too long")
            slots[sequence_number % size] = au
            marked = payload_type | 0x80 if i == last else payload_type
            pack(view, 0, first, marked, sequence_number, timestamp, ssrc)
            view[body:packet_size] = payload
            length[0] = packet_size
            rc = protect(srtp, cdata, length)
            if rc:
                raise _srtp_failed(rc)
            n = length[0]
            if direct is not None:
                try:
                    direct(view[:n], addr)
                except OSError:  # full, or failing: the transport's own handling
                    direct = None
                    sendto(bytes(view[:n]), addr)
            else:
                sendto(bytes(view[:n]) if copy else view[:n], addr)
            octets += len(payload)
            sent += n
            sequence_number = (sequence_number + 1) & 0xFFFF
        return octets, sent


def _srtp_failed(rc: int) -> SrtpError:
    return SrtpError(SRTP_ERRORS[rc] if 0 <= rc < len(SRTP_ERRORS) else f"srtp error {rc}")


async def run_shared_rtp(
    sender: RTCRtpSender, codec: RTCRtpCodecParameters, next_frame: Callable[[], Awaitable[PayloadFrame]]
) -> None:
    state = sender.__dict__
    state["_RTCRtpSender__rtp_started"].set()
    history = _History(_rtp.RTP_HISTORY_SIZE)
    state["_RTCRtpSender__rtp_history"] = history  # what _retransmit reads
    extensions_map = state["_RTCRtpSender__rtp_header_extensions_map"]
    payload_type: int = codec.payloadType or 0  # always set once negotiated
    sequence_number = _rs.random_sequence_number()
    timestamp_origin = random32()
    out: _DirectSend | None = None
    extensions: _Extensions | None = None
    try:
        while True:
            if state["_RTCRtpSender__track"] is None:
                await asyncio.sleep(0.02)
                continue
            payloads, pts90 = await next_frame()
            if not sender._enabled or not payloads:
                continue
            dtls = sender.transport
            if out is None or not out.current(dtls):
                out = _DirectSend(dtls)
            mid = state["_RTCRtpSender__mid"]
            if extensions is None or extensions.mid != mid:
                extensions = _Extensions(extensions_map, mid)
            timestamp = uint32_add(timestamp_origin, pts90)
            ntp = _ntp_now()
            abs_send_time = (ntp >> 14) & 0x00FFFFFF
            ext = extensions.at(abs_send_time)
            first = 0x90 if ext else 0x80  # version 2, extension bit
            au = (sequence_number, payloads, timestamp, sender._ssrc, payload_type, mid, abs_send_time)
            octets, sent = out.send_au(au, first, ext, history)
            sequence_number = (sequence_number + len(payloads)) & 0xFFFF
            counters = dtls.__dict__
            counters["_RTCDtlsTransport__tx_bytes"] += sent
            counters["_RTCDtlsTransport__tx_packets"] += len(payloads)
            state["_RTCRtpSender__ntp_timestamp"] = ntp
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
