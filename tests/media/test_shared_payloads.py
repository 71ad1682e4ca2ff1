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
from aiortc.rtp import RtpPacket

from node.media import MediaPublisher, hooks, rtploop
from node.media.filesource import FileSource, read_access_units

from .conftest import loopback_pc


class Wire:
    """Keeps the RTP packets one viewer's DTLS transport receives, after SRTP unprotect
    (what the publisher's sender built and sent on the wire), parsed with aiortc's own
    parser. The sender protects and sends without aiortc's RTCDtlsTransport._send_rtp
    (rtploop._DirectSend), so the packets are taken where they arrive."""

    def __init__(self, session):
        self.raw: list[bytes] = []
        receiver = next(t.receiver for t in session.viewer.getTransceivers() if t.kind == "video")
        transport = receiver.transport
        self.map = transport._rtp_header_extensions_map
        original = transport._handle_rtp_data

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            self.raw.append(data)
            await original(data, arrival_time_ms=arrival_time_ms)

        transport._handle_rtp_data = handle_rtp_data

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


def test_direct_send_mirrors_aiortcs_send_chain():
    """rtploop._DirectSend does per packet what RTCDtlsTransport._send_rtp and the aioice
    chain under it do, and protects as pylibsrtp's Session.protect does: if an upgrade
    changes any of these steps, this fails and the send path must be revisited."""
    import aioice.ice
    import pylibsrtp
    from aiortc.rtcdtlstransport import RTCDtlsTransport
    from aiortc.rtcicetransport import RTCIceTransport

    def source(f) -> str:
        return inspect.getsource(f)

    for owner, lines in (
        (
            RTCDtlsTransport._send_rtp,
            (
                "if self._state != State.CONNECTED:",
                "data = self._tx_srtp.protect(data)",
                "await self.transport._send(data)",
                "self.__tx_bytes += len(data)",
                "self.__tx_packets += 1",
            ),
        ),
        (RTCIceTransport.__init__, ("self._send = self._connection.send",)),
        (aioice.ice.Connection.send, ("await self.sendto(data, 1)",)),
        (
            aioice.ice.Connection.sendto,
            (
                "active_pair = self._nominated.get(component)",
                "await active_pair.protocol.send_data(data, active_pair.remote_addr)",
            ),
        ),
        (aioice.ice.StunProtocol.send_data, ("self.transport.sendto(data, addr)",)),
        (
            rtploop._SELECTOR_DATAGRAM.sendto,
            (
                "if not self._buffer:",
                "self._sock.sendto(data, addr)",
                "except (BlockingIOError, InterruptedError):",
                "self._buffer.append((bytes(data), addr))",
            ),
        ),
        (pylibsrtp.Session.protect, ("lib.srtp_protect, SRTP_MAX_TRAILER_LEN",)),
        (
            pylibsrtp.Session._Session__process,
            (
                "if len(data) > len(self._cdata) - trailer:",
                "self._buffer[0 : len(data)] = data",
                "func(self._srtp[0], self._cdata, len_p)",
                "return self._buffer[0 : len_p[0]]",
            ),
        ),
    ):
        src = source(owner)
        for line in lines:
            assert line in src, f"{owner.__qualname__} changed: {line!r} is gone"


def test_lazy_history_holds_what_aiortcs_dict_would():
    """The history keeps one reference per slot to the AU sent; what it builds for a
    slot must be the packet aiortc's own loop would have stored there: the latest one
    with that sequence number % 128, across AUs longer than the history and a
    sequence-number wrap."""
    from aiortc.rtp import HeaderExtensions

    size = 128
    history = rtploop._History(size)
    theirs: dict[int, RtpPacket] = {}
    seq = 65_500
    for n, count in enumerate((1, 7, 130, 3, 60, 200, 2, 90)):
        payloads = [bytes([n, i % 256]) * 3 for i in range(count)]
        timestamp, extensions = 3000 * n, HeaderExtensions(mid="0", abs_send_time=n)
        au = (seq, payloads, timestamp, 1234, 96, "0", n)
        for k in range(count):  # as _DirectSend.send_au fills it, packet by packet
            history.slots[(seq + k) % size] = au
        for i, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, ssrc=1234)
            packet.payload, packet.marker, packet.extensions = payload, int(i == count - 1), extensions
            theirs[seq % size] = packet
            seq = (seq + 1) & 0xFFFF
        assert set(history) == set(theirs) and len(history) == len(theirs)
        for slot, packet in theirs.items():
            ours = history.get(slot)
            assert ours is not None
            assert vars(ours) == vars(packet), f"slot {slot} after AU {n}"
    assert history.get(size) is None and history.get(-1) is None


@pytest.mark.parametrize(
    "uris",
    [
        ("urn:ietf:params:rtp-hdrext:sdes:mid", "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        ("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "urn:ietf:params:rtp-hdrext:sdes:mid"),
        ("urn:ietf:params:rtp-hdrext:sdes:mid",),
        ("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",),
        (),
    ],
)
def test_extensions_are_what_aiortc_serializes(uris):
    """Only the abs-send-time bytes are patched per AU: the result must be aiortc's own
    serialization for every value, whichever extensions were negotiated."""
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap

    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i + 2, uri=u) for i, u in enumerate(uris)]
        )
    )
    ours = rtploop._Extensions(extensions_map, "video-mid")
    assert ours.offset is None or ours.offset >= 0  # a layout it knows: patched, not serialized
    for value in (0, 1, 0x123456, 0xABCDEF, 0xFFFFFF, 0x7F00FF):
        profile, body = extensions_map.set(HeaderExtensions(mid="video-mid", abs_send_time=value))
        expected = rtploop._EXT_HEADER.pack(profile, len(body) >> 2) + body if body else b""
        assert ours.at(value) == expected


def test_ntp_time_is_aiortcs():
    import datetime

    from aiortc import clock

    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    for us in (0, 1, 999_999, 1_764_640_000_123_456, 1_764_640_000_999_999, 4_000_000_000_000_001):
        dt = epoch + datetime.timedelta(microseconds=us)
        assert rtploop.ntp_from_unix_us(us) == clock.datetime_to_ntp(dt)
    assert abs((rtploop._ntp_now() >> 32) - (clock.current_ntp_time() >> 32)) <= 1


def test_integer_90khz_timestamps_are_aiortcs():
    import fractions

    from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

    from node.media.track import to_90khz

    us = fractions.Fraction(1, 1_000_000)
    for pts in [*range(0, 200_000, 7), 33_333, 66_666, 10**12 + 1, 2**40 - 3]:
        assert to_90khz(pts) == convert_timebase(pts, us, VIDEO_TIME_BASE)


async def test_direct_send_refuses_a_transport_that_is_not_connected():
    pc = loopback_pc()
    sender = pc.addTransceiver("video", direction="sendonly").sender
    with pytest.raises(ConnectionError):
        rtploop._DirectSend(sender.transport)
    await pc.close()


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
    sender = pc.addTransceiver("video", direction="sendonly").sender
    del sender.transport.__dict__["_tx_srtp"]
    with pytest.raises(hooks.MediaError, match="_tx_srtp"):
        rtploop.hook_sender_payloads(sender, nothing)
    await pc.close()


def test_check_internals_names_a_moved_send_path(monkeypatch):
    import pylibsrtp

    from node import internals

    # "set": assigned by one of the class's methods, read from its source
    stun = "aioice.ice:StunProtocol"
    assert internals.Internal("media", stun, "transport", "set", "").present()
    assert not internals.Internal("media", stun, "no_such_attribute", "set", "").present()
    monkeypatch.setattr(internals.importlib.metadata, "version", lambda name: "9.9.9")
    with pytest.raises(hooks.MediaError, match="pylibsrtp is 9.9.9, the RTP loop needs 1.0.0"):
        hooks.check_internals()
    monkeypatch.undo()
    internals.media_problems.cache_clear()  # the answer is kept per process
    session = pylibsrtp.Session()
    del session._cdata  # an instance attribute, probed on a fresh Session
    monkeypatch.setattr(pylibsrtp, "Session", lambda: session)
    with pytest.raises(hooks.MediaError, match="pylibsrtp.Session._cdata is gone"):
        hooks.check_internals()


async def test_two_viewers_share_payloads_with_their_own_streams(clip_dir, sessions):
    source = FileSource(clip_dir / "clip.h264")
    publisher = MediaPublisher(source, None)
    await publisher.start()
    try:
        a, b = sessions(), sessions()
        await a.connect(publisher)
        await b.connect(publisher)
        senders = [video_sender(a), video_sender(b)]
        wires = [Wire(a), Wire(b)]
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
        wire = Wire(session)
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


async def test_a_socket_that_cannot_take_more_falls_back_to_the_transport(clip_dir, sessions):
    """The direct path sends on the pair's socket while the asyncio transport has
    nothing queued; when the socket refuses a datagram (full), that datagram and the
    rest of the AU go through the transport's own sendto, which queues and sends them
    in order: nothing is lost, and what arrives is what was built."""
    source = FileSource(clip_dir / "clip.h264")
    publisher = MediaPublisher(source, None)
    await publisher.start()
    try:
        session = await sessions().connect(publisher)
        wire = Wire(session)
        await session.receiver.wait_video_frames(5, timeout=30)
        out = rtploop._DirectSend(video_sender(session).transport)
        refused = []

        def full(data, addr):
            refused.append(addr)
            raise BlockingIOError

        out.sock_sendto = full
        ssrc, payloads = 0x1234ABCD, [bytes([i]) * 300 for i in range(5)]
        history = rtploop._History(128)
        out.send_au((65534, payloads, 777, ssrc, 96, None, 0), 0x80, b"", history)
        assert refused == [out.addr], "after the first refusal the transport sends the rest"
        for _ in range(100):
            ours = [p for p in wire.packets() if p.ssrc == ssrc]
            if len(ours) == len(payloads):
                break
            await asyncio.sleep(0.02)
        assert [p.payload for p in ours] == payloads
        assert [p.sequence_number for p in ours] == [65534, 65535, 0, 1, 2]
        assert [p.marker for p in ours] == [0, 0, 0, 0, 1] and {p.timestamp for p in ours} == {777}
        assert history.get(1).sequence_number == 1 and history.get(1).payload == payloads[3]
    finally:
        await publisher.stop()
