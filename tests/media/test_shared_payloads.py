"""Packetize once, send to every viewer: the shared-payload sender hook (hooks.py) over
real aiortc on both ends. Each viewer still gets its own RTP stream (SSRC, sequence
numbers, timestamps, marker bits, header extensions), NACKs are answered from its own
history, and the packets are the ones aiortc's own loop would have built."""

from __future__ import annotations

import asyncio
import inspect
import itertools

import av
import pytest
from aiortc import RTCRtpSender
from aiortc.codecs import h264 as aiortc_h264
from aiortc.rtp import RtpPacket, is_rtcp

from node.media import MediaPublisher, hooks, rtploop
from node.media.filesource import FileSource, read_access_units

from .conftest import loopback_pc


class Wire:
    """Keeps the plaintext RTP packets one sender hands to its DTLS transport (before
    SRTP), parsed with aiortc's own parser."""

    def __init__(self, sender: RTCRtpSender):
        self.raw: list[bytes] = []
        self.map = sender._RTCRtpSender__rtp_header_extensions_map
        transport = sender.transport
        original = transport._send_rtp

        async def send_rtp(data: bytes) -> None:
            if not is_rtcp(data):
                self.raw.append(data)
            await original(data)

        transport._send_rtp = send_rtp

    def packets(self) -> list[RtpPacket]:
        return [RtpPacket.parse(d, self.map) for d in self.raw]


def video_sender(session) -> RTCRtpSender:
    return next(t.sender for t in session.publisher_pc.getTransceivers() if t.kind == "video")


def frames(packets: list[RtpPacket], pt: int) -> list[list[RtpPacket]]:
    """Media packets grouped by RTP timestamp, in order."""
    out: list[list[RtpPacket]] = []
    for p in packets:
        if p.payload_type != pt:
            continue
        if out and out[-1][0].timestamp == p.timestamp:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def test_packetize_is_aiortcs_own(clip_dir):
    aus, _ = read_access_units(clip_dir / "clip.h264")
    encoder = aiortc_h264.H264Encoder()
    for au in aus[:40]:
        packet = av.Packet(au)
        packet.pts, packet.time_base = 0, aiortc_h264.VIDEO_TIME_BASE
        assert rtploop.packetize(au) == encoder.pack(packet)[0]


def test_shared_sender_mirrors_aiortcs_rtp_loop():
    """The hook re-implements RTCRtpSender._run_rtp for shared payloads: if an upgrade
    changes what that loop does per packet, this fails and the hook must be revisited."""
    src = inspect.getsource(RTCRtpSender._run_rtp)
    for line in (
        "sequence_number = random_sequence_number()",
        "timestamp_origin = random32()",
        "timestamp = uint32_add(timestamp_origin, enc_frame.timestamp)",
        "packet.marker = (i == len(enc_frame.payloads) - 1) and 1 or 0",
        "clock.current_ntp_time() >> 14",
        "packet.extensions.mid = self.__mid",
        "self.__rtp_history[packet.sequence_number % RTP_HISTORY_SIZE]",
        "packet.serialize(self.__rtp_header_extensions_map)",
        "await self.transport._send_rtp(packet_bytes)",
        "self.__octet_count += len(payload)",
        "self.__packet_count += 1",
        "self.__rtp_exited.set()",
    ):
        assert line in src, f"aiortc's RTP loop changed: {line!r} is gone"
    assert "self.__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)" in inspect.getsource(
        RTCRtpSender._retransmit
    )


def test_history_entries_are_whole_rtp_packets():
    """The loop's history entries skip RtpPacket.__init__: they must still carry every
    attribute aiortc's packets have (an upgrade adding one fails here)."""
    from aiortc.rtp import HeaderExtensions

    from node.media.rtploop import _SentPacket

    ours = _SentPacket(96, 1, 7, 9000, 1234, b"x", HeaderExtensions(mid="0"))
    assert set(vars(ours)) == set(vars(RtpPacket()))
    theirs = RtpPacket(payload_type=96, marker=1, sequence_number=7, timestamp=9000, ssrc=1234, payload=b"x")
    theirs.extensions = HeaderExtensions(mid="0")
    assert ours.serialize() == theirs.serialize()


def test_check_internals_names_a_missing_rtp_loop(monkeypatch):
    monkeypatch.delattr(RTCRtpSender, "_run_rtp")
    with pytest.raises(hooks.MediaError, match="_run_rtp"):
        hooks.check_internals()


async def test_hook_refuses_a_sender_without_the_state_it_needs():
    pc = loopback_pc()
    sender = pc.addTransceiver("video", direction="sendonly").sender
    del sender.__dict__["_RTCRtpSender__rtp_history"]

    async def nothing():
        raise AssertionError

    with pytest.raises(hooks.MediaError, match="rtp_history"):
        rtploop.hook_sender_payloads(sender, nothing)
    await pc.close()


async def test_two_viewers_share_payloads_with_their_own_streams(clip_dir, sessions):
    source = FileSource(clip_dir / "clip.h264")
    publisher = MediaPublisher(source, None)
    await publisher.start()
    try:
        a, b = sessions(), sessions()
        await a.connect(publisher)
        await b.connect(publisher)
        senders = [video_sender(a), video_sender(b)]
        wires = [Wire(s) for s in senders]
        await a.receiver.wait_video_frames(20, timeout=30)
        await b.receiver.wait_video_frames(20, timeout=30)
        for _ in range(100):  # until both sent the same 10 AUs
            if min(len(w.raw) for w in wires) > 200:
                break
            await asyncio.sleep(0.05)
        streams = []
        for sender, wire in zip(senders, wires, strict=True):
            pt = sender._RTCRtpSender__rtp_history[next(iter(sender._RTCRtpSender__rtp_history))].payload_type
            packets = [p for p in wire.packets() if p.payload_type == pt]  # RTX aside
            assert {p.ssrc for p in packets} == {sender._ssrc}
            seqs = [p.sequence_number for p in packets]
            assert all((y - x) % 65536 == 1 for x, y in itertools.pairwise(seqs)), "sequence numbers skip"
            grouped = frames(packets, pt)
            for frame in grouped:
                assert [p.marker for p in frame] == [0] * (len(frame) - 1) + [1]
                assert all(p.extensions.mid == sender._RTCRtpSender__mid for p in frame)
                assert all(p.extensions.abs_send_time is not None for p in frame)
            stamps = [f[0].timestamp for f in grouped]
            steps = {(y - x) % 2**32 for x, y in itertools.pairwise(stamps)}
            assert steps <= {2999, 3000, 3001}, f"not 30 fps in 90 kHz: {steps}"
            # the bytes on the wire are what aiortc's serializer makes of its history entry
            history = sender._RTCRtpSender__rtp_history
            media = [r for r in wire.raw if r[1] & 0x7F == pt]
            for raw, p in zip(media[-100:], packets[-100:], strict=True):
                kept = history.get(p.sequence_number % 128)
                if kept is not None and kept.sequence_number == p.sequence_number:
                    assert kept.serialize(wire.map) == raw
            streams.append(grouped)
        assert senders[0]._ssrc != senders[1]._ssrc
        # same access units -> the very same payload objects (packetized once), each
        # viewer with its own sequence numbers
        by_payload = [{tuple(p.payload for p in f): f for f in s} for s in streams]
        common = set(by_payload[0]) & set(by_payload[1])
        assert len(common) >= 5
        history0 = senders[0]._RTCRtpSender__rtp_history.values()
        history1 = senders[1]._RTCRtpSender__rtp_history.values()
        shared = {id(p.payload) for p in history0} & {id(p.payload) for p in history1}
        assert shared, "the two senders hold separate copies of the same payloads"
        payload = next(iter(common))
        seq0 = [p.sequence_number for p in by_payload[0][payload]]
        seq1 = [p.sequence_number for p in by_payload[1][payload]]
        assert seq0 != seq1 or senders[0]._ssrc != senders[1]._ssrc
        stats = await senders[0].getStats()
        outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
        assert outbound.packetsSent >= len(wires[0].raw) and outbound.bytesSent > 0
    finally:
        await publisher.stop()


async def test_nack_is_answered_from_the_viewers_own_history(clip_dir, sessions):
    source = FileSource(clip_dir / "clip.h264")
    publisher = MediaPublisher(source, None)
    await publisher.start()
    try:
        session = await sessions().connect(publisher)
        sender = video_sender(session)
        wire = Wire(sender)
        await session.receiver.wait_video_frames(10, timeout=30)
        for _ in range(100):
            if len(wire.raw) >= 20:
                break
            await asyncio.sleep(0.05)
        lost = wire.packets()[-5]
        before = len(wire.raw)
        # the viewer's own receiver sends a real RTCP NACK for one packet
        receiver = next(t.receiver for t in session.viewer.getTransceivers() if t.kind == "video")
        await receiver._send_rtcp_nack(sender._ssrc, [lost.sequence_number])
        for _ in range(100):
            resent = [p for p in wire.packets()[before:] if p.ssrc == sender._rtx_ssrc]
            if resent:
                break
            await asyncio.sleep(0.02)
        assert resent, "no retransmission for the NACKed packet"
        rtx = resent[0]
        # RTX (RFC 4588): the original sequence number, then the original payload
        assert rtx.payload[:2] == lost.sequence_number.to_bytes(2, "big")
        assert rtx.payload[2:] == lost.payload
        assert rtx.timestamp == lost.timestamp and rtx.marker == lost.marker
    finally:
        await publisher.stop()
