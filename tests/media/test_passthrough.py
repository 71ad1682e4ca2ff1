"""Real aiortc on both ends over loopback: what a viewer records is byte-identical to
what the source produced, and no video frame is encoded by the CPU on the way."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.codecs import h264 as aiortc_h264

from node.media import MediaPublisher, read_recorded_access_units
from node.media.annexb import is_idr
from node.media.audio import ToneSource
from node.media.filesource import FileSource
from node.media.hooks import sender_encoder


class SourceTap:
    """Wraps a source's sink to keep every access unit it produced."""

    def __init__(self, source):
        self.aus: list[bytes] = []
        original = source.start

        def start(sink):
            def tap(au):
                self.aus.append(au.data)
                sink(au)

            original(tap)

        source.start = start


def assert_contiguous_run(recorded: list[bytes], produced: list[bytes]) -> None:
    """The recorded AUs are exactly a contiguous run of the produced ones."""
    assert recorded, "nothing recorded"
    start = next(i for i, au in enumerate(produced) if au == recorded[0])
    assert produced[start : start + len(recorded)] == recorded


class _NoEncoderAv:
    """aiortc's h264 module sees this instead of `av`: opening any encoder context
    (libx264 is what aiortc would open) is recorded and refused."""

    def __init__(self, real, opened: list):
        self._real = real
        self._opened = opened
        real_ctx = real.CodecContext

        class CodecContext:
            @staticmethod
            def create(name, mode="r"):
                if mode == "w":
                    opened.append(name)
                    raise AssertionError(f"aiortc opened the {name} encoder on the passthrough path")
                return real_ctx.create(name, mode)

        self.CodecContext = CodecContext

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture
def no_cpu_encode(monkeypatch):
    """Fails the test if aiortc's software H.264 path is ever entered or an encoder is
    opened; counts calls of aiortc's packetizer, proving the access units went the
    packetize-only way (once per AU, shared by the viewers' senders)."""
    calls: list = []
    packed: list = []

    def forbidden(self, *args, **kwargs):
        calls.append(args)
        raise AssertionError("aiortc tried to encode a video frame on the passthrough path")

    original_packetize = aiortc_h264.H264Encoder._packetize.__func__

    def packetize(cls, packages):
        packed.append(1)
        return original_packetize(cls, packages)

    monkeypatch.setattr(aiortc_h264.H264Encoder, "encode", forbidden)
    monkeypatch.setattr(aiortc_h264.H264Encoder, "_encode_frame", forbidden)
    monkeypatch.setattr(aiortc_h264.H264Encoder, "_packetize", classmethod(packetize))
    monkeypatch.setattr(aiortc_h264, "av", _NoEncoderAv(aiortc_h264.av, calls))
    yield calls
    assert packed, "no access unit went through aiortc's H.264 packetizer"


@pytest.mark.parametrize("name", ["clip.h264", "clip.mp4", "clip.ts"])
async def test_file_passthrough_is_bit_exact(name, clip_dir, tmp_path, sessions, no_cpu_encode):
    source = FileSource(clip_dir / name)
    tap = SourceTap(source)
    publisher = MediaPublisher(source, ToneSource())
    await publisher.start()
    try:
        session = await sessions().connect(publisher, record_path=tmp_path / "rec.mkv")
        await session.receiver.wait_video_frames(45, timeout=30)
        sender = session.attachment.video_track and next(
            t.sender for t in session.publisher_pc.getTransceivers() if t.kind == "video"
        )
        encoder = sender_encoder(sender)
        # the shared-payload sender never creates aiortc's per-sender codec object
        assert encoder is None or encoder.codec is None, "libx264 was opened on the passthrough path"
        await session.close()
    finally:
        await publisher.stop()
    assert not no_cpu_encode
    received = session.receiver.access_units
    assert received[0] == tap.aus[tap.aus.index(received[0])]
    assert_contiguous_run(received, tap.aus)
    recorded = read_recorded_access_units(tmp_path / "rec.mkv")
    assert len(recorded) >= 40
    assert_contiguous_run(recorded, tap.aus)
    assert recorded[0] in tap.aus and b"\x00\x00\x00\x01\x67" in recorded[0]  # starts on an IDR+SPS
    summary = session.receiver.summary()
    assert summary["video_frames"] >= 45 and summary["ttff"] is not None


async def run_recording(source, sessions, path, frames=45):
    tap = SourceTap(source)
    publisher = MediaPublisher(source, ToneSource())
    await publisher.start()
    try:
        session = await sessions().connect(publisher, record_path=path)
        await session.receiver.wait_video_frames(frames, timeout=40)
        await session.close()
    finally:
        await publisher.stop()
    return tap, session


async def test_rtsp_passthrough_is_bit_exact(rtsp_server, tmp_path, sessions, no_cpu_encode):
    from node.media.rtsp import RtspSource

    tap, session = await run_recording(RtspSource(rtsp_server), sessions, tmp_path / "rtsp.mp4")
    recorded = read_recorded_access_units(tmp_path / "rtsp.mp4")
    assert len(recorded) >= 40
    assert_contiguous_run(recorded, tap.aus)
    assert_contiguous_run(session.receiver.access_units, tap.aus)
    assert not no_cpu_encode


async def test_fake_picamera2_passthrough_is_bit_exact(fake_picamera2, tmp_path, sessions, no_cpu_encode):
    from node.media.picamera2 import Picamera2Source

    source = Picamera2Source(320, 240, 30, bitrate=800_000, iperiod=15)
    tap, session = await run_recording(source, sessions, tmp_path / "cam.mkv")
    recorded = read_recorded_access_units(tmp_path / "cam.mkv")
    assert len(recorded) >= 40
    assert_contiguous_run(recorded, tap.aus)
    assert source.info().label == "hardware"
    assert not no_cpu_encode


@pytest.fixture(scope="module")
def long_gop_clip(tmp_path_factory):
    """4 s with a single IDR: any later IDR was forced."""
    from node.media.testsrc import encode_pattern

    path = tmp_path_factory.mktemp("longgop") / "long.h264"
    path.write_bytes(b"".join(encode_pattern(320, 240, 30, seconds=4.0, gop=300, bitrate=300_000)))
    return path


async def test_pli_gives_an_idr_within_two_frames(long_gop_clip, sessions):
    source = FileSource(long_gop_clip)
    tap = SourceTap(source)
    requested_at = []
    original = source.request_keyframe
    source.request_keyframe = lambda: (requested_at.append(len(tap.aus)), original())
    publisher = MediaPublisher(source, None)
    await publisher.start()
    try:
        session = await sessions().connect(publisher)
        receiver = session.receiver
        await receiver.wait_video_frames(25, timeout=30)
        assert receiver.video_keyframes == 1  # only the one the viewer started on
        joins = len(requested_at)
        sent_at = receiver.video_frames
        assert await receiver.request_keyframe()
        await receiver.wait_video_frames(sent_at + 6, timeout=30)
    finally:
        await publisher.stop()
    assert len(requested_at) == joins + 1, "the PLI did not reach the source"
    at = requested_at[-1]
    assert any(is_idr(au) for au in tap.aus[at : at + 2]), "source made no IDR within two frames"
    after = receiver.access_units[sent_at:]
    first_idr = next(i for i, au in enumerate(after) if is_idr(au))
    assert first_idr < 2, f"viewer got the IDR {first_idr + 1} frames after its PLI"


async def test_audio_and_video_reach_the_viewer(clip_dir, sessions):
    publisher = MediaPublisher(FileSource(clip_dir / "clip.ts"), ToneSource())
    await publisher.start()
    try:
        session = await sessions().connect(publisher, decode=True)
        await session.receiver.wait_video_frames(30, timeout=30)
        for _ in range(100):
            if session.receiver.audio_frames >= 20:
                break
            await asyncio.sleep(0.05)
        summary = session.receiver.summary()
        described = publisher.describe()
    finally:
        await publisher.stop()
    assert summary["audio_frames"] >= 20 and summary["audio_peak"] > 0.1  # Opus-decoded tone
    assert summary["decoded_frames"] >= 25  # the optional decode-for-counting path
    assert described["video"]["label"] == "passthrough" and described["video"]["viewers"] == 1
    assert described["audio"]["kind"] == "tone"


def test_the_no_encode_spy_catches_aiortc_encoding(no_cpu_encode):
    """The spy is live: aiortc's own encode path trips it, pack() does not."""
    import av

    encoder = aiortc_h264.H264Encoder()
    with pytest.raises(AssertionError, match="encode"):
        encoder.encode(av.VideoFrame(64, 64, "yuv420p"))
    with pytest.raises(AssertionError, match="libx264"):
        aiortc_h264.av.CodecContext.create("libx264", "w")  # what aiortc's encode opens
    packet = av.Packet(b"\x00\x00\x00\x01\x65\x88\x84")
    packet.pts, packet.time_base = 0, aiortc_h264.VIDEO_TIME_BASE
    payloads, _ = encoder.pack(packet)
    assert payloads and encoder.codec is None
