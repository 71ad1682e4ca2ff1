"""Every place this package reaches into aiortc 1.16.0's private internals, in one file
(and rtploop.py: payloads packetized once and shared by every viewer's sender).

aiortc has no public API for: forwarding PLI/FIR to a passthrough source, reading REMB,
getting encoded frames out of a receiver, or releasing a video frame on its marker bit.
Each hook below is per-instance (one sender, one receiver), so two peer connections in
one process never affect each other; `check_internals()` fails loudly when an aiortc
upgrade moves any of them (tests/media/test_hooks.py runs it and each hook for real)."""

from __future__ import annotations

import fractions
import queue
from collections.abc import Callable
from dataclasses import replace

import av
from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc import rtcrtpreceiver as _rr
from aiortc.codecs import CODECS
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)
from av.frame import Frame

from .. import internals
from .source import MediaError

AIORTC_VERSION = internals.AIORTC_VERSION
VIDEO_CLOCK = fractions.Fraction(1, 90_000)

_SENDER_ATTRS = ("_send_keyframe", "_handle_rtcp_packet", "_ssrc")
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"  # name-mangled: reached by name
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_RECEIVER_ATTRS = (_JITTER_BUFFER, _DECODER_QUEUE, _DECODER_THREAD, "_send_rtcp_pli")


def check_internals() -> None:
    """Raise MediaError naming what changed if aiortc is not the version these hooks
    were written and tested against (the list: node/internals.py)."""
    problems = internals.media_problems()
    if problems:
        raise MediaError("aiortc internals changed: " + "; ".join(problems))


# --- sender: PLI/FIR and REMB/loss --------------------------------------------------


def hook_sender_feedback(
    sender: RTCRtpSender,
    on_keyframe: Callable[[], None],
    on_remb: Callable[[int], None] | None = None,
    on_loss: Callable[[float], None] | None = None,
) -> Callable[[], None]:
    """Forward this sender's PLI/FIR to `on_keyframe` (aiortc only sets a flag read on
    its own encode path, a no-op in passthrough), and REMB (bit/s) / receiver-report
    fraction lost (0..1) to the callbacks. Returns the unhook function."""
    for name in _SENDER_ATTRS:
        if not hasattr(sender, name):
            raise MediaError(f"aiortc RTCRtpSender has no {name}: the keyframe hook cannot work")
    original_keyframe = sender._send_keyframe
    original_rtcp = sender._handle_rtcp_packet

    def send_keyframe() -> None:
        original_keyframe()
        on_keyframe()

    async def handle_rtcp(packet: AnyRtcpPacket) -> None:
        if on_remb is not None and isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                if sender._ssrc in ssrcs:
                    on_remb(bitrate)
        elif on_loss is not None and isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == sender._ssrc:
                    on_loss(report.fraction_lost / 256.0)
        await original_rtcp(packet)

    # Instance attributes shadow the class methods: RTCDtlsTransport dispatches with
    # `await recipient._handle_rtcp_packet(packet)`, which calls `self._send_keyframe()`.
    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]

    def unhook() -> None:
        sender.__dict__.pop("_send_keyframe", None)
        sender.__dict__.pop("_handle_rtcp_packet", None)

    return unhook


def sender_encoder(sender: RTCRtpSender) -> object:
    """aiortc's per-sender codec object (created lazily on the first frame); in
    passthrough its libx264 context (`.codec`) must stay None."""
    return getattr(sender, "_RTCRtpSender__encoder", None)


# --- codec preferences ----------------------------------------------------------------

H264_PROFILES = ("42e01f", "42001f")  # constrained baseline first, then baseline
# What this node's own receiving side (viewer, recorder) asks for: it decodes with FFmpeg
# or records as is, so every 8-bit 4:2:0 profile a camera sends: Main and High too.
H264_RECEIVE_PROFILES = ("42e01f", "42001f", "4d001f", "64001f")


def install_h264_codecs() -> None:
    """aiortc knows two H.264 entries (42001f, 42e01f) in the mutable module list
    `aiortc.codecs.CODECS["video"]`, and matches a remote H.264 codec only against an
    entry of the same profile. Add Main and High (packetization-mode 1, with RTX) on
    free dynamic payload types, so an answer stating a Main or High stream matches what
    this node offered to receive. Idempotent; used only where preferences list them."""
    video = CODECS["video"]
    have = {str(c.parameters.get("profile-level-id")) for c in video if c.mimeType.lower() == "video/h264"}
    template = next(c for c in video if c.mimeType.lower() == "video/h264")
    for plid in H264_RECEIVE_PROFILES:
        if plid in have:
            continue
        pt = max(c.payloadType or 0 for c in video) + 1
        params = {**template.parameters, "profile-level-id": plid}
        video.append(
            replace(template, payloadType=pt, parameters=params, rtcpFeedback=list(template.rtcpFeedback))
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=pt + 1, parameters={"apt": pt}
            )
        )


install_h264_codecs()


def h264_preferences(
    kind: str = "video", profiles: tuple[str, ...] = H264_PROFILES
) -> list[RTCRtpCodecCapability]:
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen: list[RTCRtpCodecCapability] = []
    for profile in profiles:
        chosen += [
            c
            for c in caps
            if c.mimeType.lower() == "video/h264" and c.parameters.get("profile-level-id") == profile
        ]
    # Listing an RTX capability keeps RTX (filter_preferred_codecs drops it otherwise).
    chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return chosen


def prefer_h264(transceiver: RTCRtpTransceiver) -> None:
    """H.264 (constrained) baseline with RTX via setCodecPreferences. When answering, the
    offer was already matched in setRemoteDescription, so the negotiated list is filtered
    too; an offer without H.264 baseline is refused with a clear error."""
    prefs = h264_preferences()
    transceiver.setCodecPreferences(prefs)
    negotiated = getattr(transceiver, "_codecs", None)
    if negotiated:
        kept = [
            c
            for c in negotiated
            if c.mimeType.lower() == "video/h264"
            and str(c.parameters.get("profile-level-id", "42e01f")).lower()[:2] == "42"
            and str(c.parameters.get("packetization-mode", "0")) == "1"
        ]
        pts = {c.payloadType for c in kept}
        kept += [
            c for c in negotiated if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") in pts
        ]
        if not pts:
            raise MediaError(
                "the peer offered no H.264 baseline with packetization-mode=1; "
                "this node only sends hardware H.264"
            )
        transceiver._codecs = kept


def prefer_h264_receive(transceiver: RTCRtpTransceiver) -> None:
    """A receiving transceiver (this node views or records): H.264 of every profile in
    H264_RECEIVE_PROFILES, with RTX, and nothing else (cameras send H.264 as encoded)."""
    transceiver.setCodecPreferences(h264_preferences(profiles=H264_RECEIVE_PROFILES))


def state_h264(
    transceiver: RTCRtpTransceiver,
    payload_type: int,
    parameters: dict[str, str | int | None],
    offered: set[int],
) -> None:
    """Make the negotiated H.264 codec the offer's `payload_type` with `parameters` (what
    the answer states and the sender uses), keeping only RTX payload types that were
    `offered`. aiortc keeps the negotiated list in the private `transceiver._codecs`
    (filled by setRemoteDescription, read by createAnswer and the sender), and keeps its
    own payload type when the offer's is below 96 (Chromium uses 35-63)."""
    negotiated = getattr(transceiver, "_codecs", None)
    if not isinstance(negotiated, list):
        raise MediaError("aiortc RTCRtpTransceiver has no _codecs list: cannot state the H.264 profile")
    h264 = [c for c in negotiated if c.mimeType.lower() == "video/h264"]
    if len(h264) != 1:
        raise MediaError(f"expected one negotiated H.264 codec, aiortc has {len(h264)}")
    codec = h264[0]
    old = codec.payloadType
    codec.payloadType = payload_type
    codec.parameters = dict(parameters)
    kept = [codec]
    for rtx in negotiated:
        is_rtx = rtx.mimeType.lower() == "video/rtx" and rtx.parameters.get("apt") in (old, payload_type)
        if is_rtx and rtx.payloadType in offered:
            rtx.parameters = {**rtx.parameters, "apt": payload_type}
            kept.append(rtx)
    negotiated[:] = kept


def dtls_roles(pc: RTCPeerConnection) -> list[str]:
    """The DTLS role ("client", "server", "auto") of each transceiver's transport, as
    aiortc applied it from the local answer's a=setup (RTCDtlsTransport._role)."""
    return [t.receiver.transport._role for t in pc.getTransceivers()]


# --- receiver: encoded frames out, frames released on the marker bit -------------------


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer releases a frame when the first packet of the NEXT frame
    arrives (a frame of latency). This one releases it as soon as its last packet (RTP
    marker bit) arrives and every packet from the frame's first is present; streams
    without markers fall back to the timestamp change."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        packets: list[RtpPacket] = []
        timestamp: int | None = None
        for count in range(self.capacity):
            pos = ((self._origin or 0) + count) % self._capacity
            packet = self._packets[pos]
            if packet is None:
                return None
            if timestamp is not None and packet.timestamp != timestamp:
                # next frame started without a marker on the previous one
                return self._release(packets, timestamp, count)
            timestamp = packet.timestamp
            packets.append(packet)
            if packet.marker:
                return self._release(packets, timestamp, count + 1)
        return None

    def _release(self, packets: list[RtpPacket], timestamp: int, count: int) -> JitterFrame:
        frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
        self.remove(count)
        return frame


class PassthroughDecoder(Decoder):
    """Returns the Annex-B access unit as an av.Packet (90 kHz pts) instead of decoding;
    with `count_decoded`, it also decodes a copy to count displayable frames. With
    `clock` 1/48000 it passes Opus packets through the same way (the web relay)."""

    def __init__(self, inner: Decoder | None = None, clock: fractions.Fraction = VIDEO_CLOCK):
        self.inner = inner
        self.clock = clock
        self.decoded = 0
        self.decode_errors = 0

    def decode(self, encoded_frame: JitterFrame) -> list[Frame]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.clock
        if self.inner is not None:
            try:
                self.decoded += len(self.inner.decode(encoded_frame))
            except av.FFmpegError:
                self.decode_errors += 1
        return [packet]  # type: ignore[list-item]  # aiortc passes what decode returns through


class _Tagged:
    """A codec parameters object marked for passthrough (delegates everything)."""

    def __init__(
        self, codec: RTCRtpCodecParameters, decoder_factory: Callable[[RTCRtpCodecParameters], Decoder]
    ):
        self._codec = codec
        self._factory = decoder_factory

    def __getattr__(self, name: str) -> object:
        return getattr(self._codec, name)


class _TaggingQueue(queue.Queue[object]):
    """The receiver's decoder queue: tags each (codec, frame) so the process-wide
    get_decoder wrapper knows this receiver wants passthrough."""

    def __init__(self, decoder_factory: Callable[[RTCRtpCodecParameters], Decoder]):
        super().__init__()
        self._factory = decoder_factory
        self._tags: dict[int, _Tagged] = {}

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        if isinstance(item, tuple):
            codec, frame = item
            tag = self._tags.get(id(codec))
            if tag is None or tag._codec is not codec:
                tag = self._tags[id(codec)] = _Tagged(codec, self._factory)
            item = (tag, frame)
        super().put(item, block, timeout)


_original_get_decoder: Callable[[RTCRtpCodecParameters], Decoder] = _rr.get_decoder  # type: ignore[attr-defined]


def aiortc_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    """aiortc's own decoder for `codec` (what receivers that are not hooked get)."""
    return _original_get_decoder(codec)


def _get_decoder(codec: object) -> Decoder:
    # Untagged codecs (every receiver not hooked below) get aiortc's own decoder, so
    # installing this process-wide changes nothing for them.
    if isinstance(codec, _Tagged):
        return codec._factory(codec._codec)
    return _original_get_decoder(codec)  # type: ignore[arg-type]


def _install_get_decoder() -> None:
    if getattr(_rr, "get_decoder", None) is not _get_decoder:
        _rr.get_decoder = _get_decoder  # type: ignore[attr-defined]  # looked up at call time


def hook_receiver(
    receiver: RTCRtpReceiver,
    passthrough: Callable[[RTCRtpCodecParameters], Decoder] | None,
    *,
    video: bool = True,
) -> None:
    """Video receiver: marker-bit frame release, and (with `passthrough`, a factory
    codec -> Decoder) encoded access units out of track.recv() instead of decoded frames.
    With `video=False` (an audio receiver), only the passthrough: each audio packet is a
    frame already. Must run before the receiver starts (the `track` event is early enough)."""
    for name in _RECEIVER_ATTRS:
        if not hasattr(receiver, name):
            raise MediaError(f"aiortc RTCRtpReceiver has no {name}: the receive hook cannot work")
    if video:
        old: JitterBuffer = getattr(receiver, _JITTER_BUFFER)
        marker = MarkerJitterBuffer(capacity=old.capacity, prefetch=old._prefetch, is_video=old._is_video)
        setattr(receiver, _JITTER_BUFFER, marker)
    if passthrough is not None:
        if getattr(receiver, _DECODER_THREAD) is not None:
            raise MediaError(
                "the receiver already started decoding; create MediaReceiver(pc) before "
                "setRemoteDescription so it sees the track event"
            )
        _install_get_decoder()
        setattr(receiver, _DECODER_QUEUE, _TaggingQueue(passthrough))


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Ask the remote sender for a keyframe (RTCP PLI) for each active SSRC."""
    sources = receiver.getSynchronizationSources()
    for source in sources:
        await receiver._send_rtcp_pli(source.source)
    return bool(sources)
