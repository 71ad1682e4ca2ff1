"""Every aiortc internal this package uses, exercised for real: these fail loudly when
an aiortc upgrade moves or changes one (aiortc is pinned to 1.16.0)."""

from __future__ import annotations

import asyncio

import aiortc
import av
import pytest
from aiortc import RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtpPacket,
    pack_remb_fci,
)

from node.media import MediaPublisher, hooks
from node.media.filesource import FileSource, read_access_units

from .conftest import loopback_pc


def test_pinned_version_and_internals_present():
    assert aiortc.__version__ == "1.16.0"
    hooks.check_internals()
    # passthrough relies on the sender packing av.Packet (not Frame) without encoding
    import inspect

    src = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "isinstance(data, Frame)" in src and ".pack(data)" in src
    assert "get_decoder(codec)" in inspect.getsource(aiortc.rtcrtpreceiver.decoder_worker)
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)


def test_check_internals_fails_loudly(monkeypatch):
    monkeypatch.setattr(aiortc, "__version__", "9.9.9")
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(hooks.MediaError, match="9.9.9.*_send_keyframe"):
        hooks.check_internals()


def rtp(seq: int, ts: int, marker: bool, data: bytes) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker))
    packet._data = data
    return packet


def test_marker_jitter_buffer_releases_on_the_last_packet():
    upstream = JitterBuffer(capacity=128, is_video=True)
    ours = hooks.MarkerJitterBuffer(capacity=128, is_video=True)
    frame1 = [rtp(100, 3000, False, b"a"), rtp(101, 3000, False, b"b"), rtp(102, 3000, True, b"c")]
    for p in frame1[:2]:
        assert ours.add(p)[1] is None
    released = ours.add(frame1[2])[1]
    assert released is not None and released.data == b"abc" and released.timestamp == 3000
    # upstream aiortc holds it until the next frame's first packet: if this changes,
    # the hook is no longer needed — revisit it
    for p in frame1:
        assert upstream.add(p)[1] is None
    assert upstream.add(rtp(103, 6000, False, b"d"))[1].data == b"abc"
    # reordering: the frame waits for its missing middle packet
    assert ours.add(rtp(104, 6000, True, b"f"))[1] is None  # 103 (b"d") never reached `ours`
    assert ours.add(rtp(103, 6000, False, b"d"))[1].data == b"df"
    # no marker bits (some senders): falls back to the timestamp change
    assert ours.add(rtp(105, 9000, False, b"g"))[1] is None
    assert ours.add(rtp(106, 12000, False, b"h"))[1].data == b"g"


async def test_last_frame_is_released_without_waiting_for_another(clip_dir, sessions):
    """A clip played once: the viewer gets its very last frame, which upstream aiortc
    would hold forever (no next frame ever starts)."""
    clip, _ = read_access_units(clip_dir / "clip.h264")
    source = FileSource(clip_dir / "clip.h264", loop=False)
    publisher = MediaPublisher(source, None)
    await publisher.start()
    try:
        session = await sessions().connect(publisher)
        await session.receiver.wait_video_frames(20, timeout=30)
        for _ in range(200):
            if source.frames == len(clip) and session.receiver.access_units[-1:] == clip[-1:]:
                break
            await asyncio.sleep(0.05)
    finally:
        await publisher.stop()
    received = session.receiver.access_units
    assert received[-1] == clip[-1]
    assert received == clip[clip.index(received[0]) :]


async def test_passthrough_hook_is_scoped_to_its_receiver(clip_dir, sessions):
    """In one process: a MediaReceiver gets av.Packets, a plain aiortc viewer of the same
    publisher still gets decoded av.VideoFrames."""
    publisher = MediaPublisher(FileSource(clip_dir / "clip.h264"), None)
    await publisher.start()
    plain_viewer, plain_pub = loopback_pc(), loopback_pc()
    try:
        recording = await sessions().connect(publisher)
        frames: list = []
        readers: list[asyncio.Future] = []  # referenced until the test ends
        plain_viewer.addTransceiver("video", direction="recvonly")
        hooks.prefer_h264(plain_viewer.getTransceivers()[0])

        @plain_viewer.on("track")
        def on_track(track):
            async def read():
                while len(frames) < 5:
                    frames.append(await track.recv())

            readers.append(asyncio.ensure_future(read()))

        await plain_viewer.setLocalDescription(await plain_viewer.createOffer())
        await plain_pub.setRemoteDescription(plain_viewer.localDescription)
        attachment = publisher.attach(plain_pub)
        await plain_pub.setLocalDescription(await plain_pub.createAnswer())
        await plain_viewer.setRemoteDescription(plain_pub.localDescription)
        await recording.receiver.wait_video_frames(10, timeout=30)
        for _ in range(200):
            if len(frames) >= 5:
                break
            await asyncio.sleep(0.05)
        attachment.detach()
    finally:
        await plain_pub.close()
        await plain_viewer.close()
        await publisher.stop()
    assert frames and all(isinstance(f, av.VideoFrame) for f in frames)
    assert all(isinstance(a, bytes) for a in recording.receiver.access_units)


async def test_sender_hooks_forward_pli_fir_remb_and_loss(clip_dir, sessions):
    source = FileSource(clip_dir / "clip.h264")
    bitrates = []
    source.set_bitrate = bitrates.append
    publisher = MediaPublisher(source, None)
    await publisher.start()
    try:
        session = await sessions().connect(publisher)
        await session.receiver.wait_video_frames(5, timeout=30)
        sender = next(t.sender for t in session.publisher_pc.getTransceivers() if t.kind == "video")
        asked = publisher.fanout.keyframes.asked
        for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
        assert publisher.fanout.keyframes.asked == asked + 2
        await sender._handle_rtcp_packet(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(700_000, [sender._ssrc])
            )
        )
        assert bitrates[-1] == 700_000
        await sender._handle_rtcp_packet(
            RtcpRrPacket(
                ssrc=1,
                reports=[
                    RtcpReceiverInfo(
                        ssrc=sender._ssrc,
                        fraction_lost=128,
                        packets_lost=10,
                        highest_sequence=1,
                        jitter=0,
                        lsr=0,
                        dlsr=0,
                    )
                ],
            )
        )
        assert bitrates[-1] == 525_000  # 50 % loss cuts the estimate by a quarter
        await sender._handle_rtcp_packet(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(50_000_000, [sender._ssrc])
            )
        )
        assert bitrates[-1] == publisher.policy.max_bitrate  # clamped to the profile's bounds
        session.attachment.detach()
        assert "_send_keyframe" not in sender.__dict__  # unhooked
    finally:
        await publisher.stop()


async def test_prefer_h264_when_answering_a_vp8_first_offer(clip_dir):
    """A browser-like offer lists VP8 first; the answer must still send H.264 + RTX."""
    viewer, pub = loopback_pc(), loopback_pc()
    publisher = MediaPublisher(FileSource(clip_dir / "clip.h264"), None)
    await publisher.start()
    try:
        viewer.addTransceiver("video", direction="recvonly")  # default order: VP8 first
        await viewer.setLocalDescription(await viewer.createOffer())
        assert viewer.localDescription.sdp.index("VP8") < viewer.localDescription.sdp.index("H264")
        await pub.setRemoteDescription(viewer.localDescription)
        publisher.attach(pub)
        await pub.setLocalDescription(await pub.createAnswer())
        answer = pub.localDescription.sdp
        video = answer[answer.index("m=video") :]
        assert "VP8" not in video and "H264" in video and "rtx" in video
        assert "a=sendonly" in video
    finally:
        await publisher.stop()
        await pub.close()
        await viewer.close()
