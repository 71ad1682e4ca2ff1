"""The encoded video sources, each with real H.264 bytes: file formats, RTSP from a
loopback server, the fake picamera2 (hardware path and Pi 5 fallback), and the SPS/PPS
logic the V4L2 M2M path depends on."""

from __future__ import annotations

import av
import pytest

from node.media.annexb import (
    NAL_IDR,
    NAL_PPS,
    NAL_SPS,
    ParameterSetCache,
    find_sps,
    is_idr,
    nal_types,
    split_nals,
)
from node.media.filesource import FileSource, read_access_units
from node.media.select import parse_audio, parse_video
from node.media.source import HARDWARE, SOFTWARE_FALLBACK, MediaError

from .conftest import Collector


def idr_has_parameter_sets(au: bytes) -> bool:
    types = nal_types(au)
    return types.index(NAL_SPS) < types.index(NAL_PPS) < types.index(NAL_IDR)


def test_file_formats_give_the_same_access_units(clip_dir):
    raw, _ = read_access_units(clip_dir / "clip.h264")
    mp4, fps = read_access_units(clip_dir / "clip.mp4")
    ts, _ = read_access_units(clip_dir / "clip.ts")
    assert fps == 30 and len(raw) == len(mp4) == 120
    # MP4's length-prefixed NAL units are converted back to exactly the raw stream
    assert [list(split_nals(a)) for a in mp4] == [list(split_nals(a)) for a in raw]
    # MPEG-TS adds access unit delimiters (type 9) and nothing else
    assert [[n for n in split_nals(a) if n[0] & 0x1F != 9] for a in ts] == [list(split_nals(a)) for a in raw]
    for au in raw:
        if is_idr(au):
            assert idr_has_parameter_sets(au)
    info = FileSource(clip_dir / "clip.mp4").info()
    assert (info.profile, info.width, info.height, info.fps, info.label) == (
        "constrained-baseline",
        320,
        240,
        30.0,
        "passthrough",
    )


def test_file_source_errors_are_actionable(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        FileSource(tmp_path / "missing.h264")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(MediaError, match="cannot"):
        FileSource(tmp_path / "junk.mp4")


def test_looped_file_keyframe_request_jumps_to_next_idr(clip_dir):
    source = FileSource(clip_dir / "clip.h264")
    sink = Collector()
    source.start(sink)
    try:
        sink.wait(3)
        source.request_keyframe()
        n = len(sink.wait(3))
        aus = sink.wait(n + 3)
    finally:
        source.stop()
    # the request was seen before one of the next two frames: one of them is an IDR
    assert any(au.keyframe for au in aus[n - 2 : n + 2])
    assert [au.pts_us for au in aus] == sorted({au.pts_us for au in aus})
    # the loop knows its IDRs (scanned once): the flag it gives is what a scan says
    assert [au.keyframe for au in aus] == [is_idr(au.data) for au in aus]


def test_sps_parser_reads_real_streams(clip_dir):
    raw, _ = read_access_units(clip_dir / "clip.h264")
    sps = find_sps(raw[0])
    assert (sps.profile, sps.level, sps.width, sps.height) == ("constrained-baseline", "2.0", 320, 240)
    assert sps.profile_level_id.startswith("42")


def test_m2m_parameter_set_logic_with_real_bytes(clip_dir):
    """h264_v4l2m2m emits SPS/PPS once; without the cache a viewer joining at a later IDR
    cannot decode, with it the stream decodes from that IDR."""
    raw, _ = read_access_units(clip_dir / "clip.h264")
    second_idr = [i for i, au in enumerate(raw) if is_idr(au)][1]
    stripped = [raw[0]] + [
        b"".join(b"\x00\x00\x00\x01" + n for n in split_nals(au) if n[0] & 0x1F not in (7, 8))
        for au in raw[1:]
    ]
    cache = ParameterSetCache()
    prepared = [cache.prepare(au) for au in stripped]
    assert prepared == raw  # exactly the encoder's in-band form restored
    assert ParameterSetCache().prepare(stripped[second_idr]) == stripped[second_idr]  # nothing learned

    def decoded(aus):
        ctx = av.CodecContext.create("h264", "r")
        count = 0
        for au in aus:
            try:
                count += len(ctx.decode(av.Packet(au)))
            except av.FFmpegError:
                pass
        try:
            count += len(ctx.decode(None))
        except av.FFmpegError:
            pass
        return count

    late = slice(second_idr, second_idr + 10)
    assert decoded(stripped[late]) == 0
    assert decoded(prepared[late]) == 10
    # extradata given up front (an RTSP SDP's sprop-parameter-sets) works the same way
    extradata = b"".join(b"\x00\x00\x00\x01" + n for n in split_nals(raw[0]) if n[0] & 0x1F in (7, 8))
    assert ParameterSetCache(extradata).prepare(stripped[second_idr]) == raw[second_idr]


def test_rtsp_source_passes_camera_h264_through(rtsp_server, clip_dir):
    from node.media.rtsp import RtspSource

    raw, _ = read_access_units(clip_dir / "clip.h264")
    source = RtspSource(rtsp_server)
    sink = Collector()
    source.start(sink)
    try:
        aus = sink.wait(40, timeout=30)
    finally:
        source.stop()
    # SPS/PPS were only in the SDP: every IDR now carries them
    idrs = [au for au in aus if au.keyframe]
    assert idrs and all(idr_has_parameter_sets(au.data) for au in idrs)
    # slices are the clip's own bytes (no decode, no re-encode)
    clip_slices = {n for au in raw for n in split_nals(au) if n[0] & 0x1F in (1, 5)}
    got_slices = [n for au in aus for n in split_nals(au.data) if n[0] & 0x1F in (1, 5)]
    assert got_slices and all(n in clip_slices for n in got_slices)
    pts = [au.pts_us for au in aus]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert source.info().width == 320 and source.info().profile == "constrained-baseline"


def test_fake_picamera2_hardware_path(fake_picamera2, clip_dir):
    from node.media.picamera2 import V4L2_CID_MPEG_VIDEO_BITRATE, VIDIOC_S_CTRL, Picamera2Source

    ioctls = []
    source = Picamera2Source(
        320,
        240,
        30,
        bitrate=1_000_000,
        iperiod=15,
        ioctl=lambda fd, req, arg: ioctls.append((fd, req, bytes(arg))),
    )
    sink = Collector()
    source.start(sink)
    try:
        camera = fake_picamera2.Picamera2.instances[0]
        encoder = camera.encoder
        assert (encoder.repeat, encoder.iperiod, encoder.bitrate, encoder.profile) == (
            True,
            15,
            1_000_000,
            "constrained baseline",
        )
        assert camera.config["main"]["format"] == "YUV420"
        sink.wait(3)
        source.request_keyframe()
        n = len(sink.wait(3))
        aus = sink.wait(n + 3)
        source.set_bitrate(600_000)
    finally:
        source.stop()
    raw, _ = read_access_units(clip_dir / "clip.h264")
    assert all(au.data in raw for au in aus)  # the encoder's bytes, untouched
    assert aus[0].data == raw[0] and aus[0].pts_us == 0
    assert encoder.forced == 1 and any(au.keyframe for au in aus[n - 2 : n + 2])
    assert ioctls and ioctls[-1][1] == VIDIOC_S_CTRL
    assert ioctls[-1][2] == V4L2_CID_MPEG_VIDEO_BITRATE.to_bytes(4, "little") + (600_000).to_bytes(
        4, "little"
    )
    assert source.info().label == HARDWARE and camera.closed


def test_fake_picamera2_on_a_pi5_falls_back_to_labelled_software(fake_picamera2, monkeypatch):
    from node.media.picamera2 import Picamera2Source

    monkeypatch.setattr(fake_picamera2.platform, "_platform", fake_picamera2.platform.Platform.PISP)
    source = Picamera2Source(160, 128, 30, bitrate=300_000, iperiod=30)
    sink = Collector()
    source.start(sink)
    try:
        sink.wait(3)
        source.request_keyframe()
        aus = sink.wait(8)
    finally:
        source.stop()
    assert source.info().label == SOFTWARE_FALLBACK and "Pi 5" in source.info().note
    assert aus[0].keyframe and sum(au.keyframe for au in aus) >= 2
    assert find_sps(aus[0].data).profile == "constrained-baseline"


def test_source_strings():
    assert parse_video("testsrc").kind == "testsrc"
    assert parse_video("file:/x/y.mp4").target == "/x/y.mp4"
    assert parse_video("rtsp://192.0.2.10/1").kind == "rtsp"
    assert parse_video("picamera2").kind == "picamera2"
    assert parse_video("v4l2:/dev/video2").target == "/dev/video2"
    assert parse_audio("alsa:hw:1,0").device == "hw:1,0"
    assert parse_audio("none").kind == "none" and parse_audio("tone").kind == "tone"
    for bad in ("", "file:", "webcam", "v4l2:video0"):
        with pytest.raises(MediaError, match="use one of"):
            parse_video(bad)
    with pytest.raises(MediaError):
        parse_audio("pulse")


def test_v4l2_without_m2m_encoder_falls_back_to_labelled_software():
    """No /dev/video M2M encoder here: h264_v4l2m2m cannot open, so the raw-camera path
    uses libx264 and says so (the hardware path itself needs a board)."""
    from node.media.v4l2 import V4l2Source

    source = V4l2Source("/dev/video-none", 160, 128, 30, 300_000, 30)
    encoder = source._make_encoder()
    assert encoder.codec == "libx264"
    assert source.info().label == SOFTWARE_FALLBACK and "M2M" in source.info().note
    encoder.request_keyframe()
    aus = encoder.encode(av.VideoFrame(160, 128, "yuv420p"), 0)
    assert aus and idr_has_parameter_sets(aus[0])
    with pytest.raises(MediaError, match="cannot open the camera"):
        source.start(lambda au: None)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".ts"])
def test_recorder_round_trips_access_units(suffix, clip_dir, tmp_path):
    from node.media.receiver import Recorder, read_recorded_access_units

    raw, _ = read_access_units(clip_dir / "clip.h264")
    recorder = Recorder(tmp_path / f"r{suffix}")
    recorder.write(raw[1], 0)  # not an IDR: recording waits for one
    for i, au in enumerate(raw[:40]):
        recorder.write(au, 3000 * (i + 1))
    recorder.close()
    assert recorder.skipped == 1 and recorder.frames == 40
    back = read_recorded_access_units(tmp_path / f"r{suffix}")
    if suffix == ".ts":  # the MPEG-TS muxer adds access unit delimiters
        back = [b"".join(b"\x00\x00\x00\x01" + n for n in split_nals(a) if n[0] & 0x1F != 9) for a in back]
    assert back == raw[:40]
    with pytest.raises(MediaError, match=".mkv, .mp4 or .ts"):
        Recorder(tmp_path / "x.avi")


def test_looped_clip_keyframe_request_makes_the_very_next_frame_an_idr():
    """A request that comes while the loop waits for the next frame's time turns that
    frame into an IDR (not the one after it: a joining viewer would wait a frame more)."""
    from node.media.loop import LoopedClip

    idr, p = b"\x00\x00\x00\x01\x65\x88\x84", b"\x00\x00\x00\x01\x41\x9a\x02"

    class Clip(LoopedClip):
        kind = "test"

    source = Clip([idr, p, p, p, p, idr, p, p, p, p], fps=4.0)  # 250 ms between frames
    sink = Collector()
    source.start(sink)
    try:
        sink.wait(2)  # the IDR and a P frame; the loop now waits 250 ms for the third
        source.request_keyframe()
        aus = sink.wait(3)
    finally:
        source.stop()
    assert [au.keyframe for au in aus[:3]] == [True, False, True]
    assert aus[2].data == idr and [au.pts_us for au in aus[:3]] == [0, 250_000, 500_000]
