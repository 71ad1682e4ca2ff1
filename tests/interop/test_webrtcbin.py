"""A stock GStreamer 1.22 webrtcbin views `media-node run` through the file drop.

Stock: its own RSA certificate (the node answers a=setup:passive, so it is the DTLS
server with its ECDSA key), its default bundle-policy=none (the answer keeps one
transport per m-line) or max-bundle. It offers H.264 42e01f, 4d0032 and 640032 with
packetization-mode=1 (what docs/interop.md tells a webrtcbin user to set: the profiles
avdec_h264 decodes), so every source below is covered."""

from __future__ import annotations

import pytest
from privacy.netlab import Capture
from privacy.pcap import TCP, UDP

from .clients import view_with_webrtcbin
from .lab import OVERLAY

pytestmark = pytest.mark.timeout(120)


def _m_lines(sdp: str) -> list[str]:
    return [line.split()[0][2:] for line in sdp.splitlines() if line.startswith("m=")]


@pytest.mark.parametrize("bundle", ["none", "max-bundle"])
def test_audio_and_video(testsrc_camera, bundle, tmp_path):
    """Also the privacy proof for an unbundled answer: everything the camera sends is
    from its overlay address to the viewer's, although webrtcbin also checks from its
    LAN address (routed over the overlay link): those checks get no response."""
    capture = Capture(testsrc_camera.lab.ns["cam"], tmp_path / "cam.pcap").start()
    try:
        out = view_with_webrtcbin(testsrc_camera, "audio,video", bundle)
    finally:
        packets = capture.stop()
    sent = [p for p in packets if p.outgoing and p.proto in (TCP, UDP)]
    assert sent, "the capture saw nothing"
    leaks = [
        str(p)
        for p in sent
        if (str(p.src), str(p.dst), p.interface) != (OVERLAY["cam"], OVERLAY["user"], "ovl0")
    ]
    assert leaks == []
    # one overlay socket per m-line unbundled, one in all bundled; each one used (the
    # capture also holds earlier calls, still ending: only this answer's ports count)
    ports = {int(ln.split()[1]) for ln in out.reply.sdp.splitlines() if ln.startswith("m=")}
    assert len(ports) == (2 if bundle == "none" else 1)
    assert ports <= {p.sport for p in sent if p.proto == UDP}
    assert out.reply.kind == "answer", out.reply
    assert _m_lines(out.reply.sdp) == ["audio", "video"]
    assert ("a=group:BUNDLE" in out.reply.sdp) == (bundle == "max-bundle")
    assert out.video_frames >= 10, out
    assert (out.width, out.height) == (640, 480)
    assert out.audio_samples >= 24_000, out
    assert out.errors == []


def test_video_only(testsrc_camera):
    out = view_with_webrtcbin(testsrc_camera, "video", "none")
    assert out.reply.kind == "answer", out.reply
    assert _m_lines(out.reply.sdp) == ["video"]
    assert out.video_frames >= 10 and (out.width, out.height) == (640, 480), out
    assert out.audio_samples == 0


def test_audio_only(testsrc_camera):
    out = view_with_webrtcbin(testsrc_camera, "audio", "none")
    assert out.reply.kind == "answer", out.reply
    assert _m_lines(out.reply.sdp) == ["audio"]
    assert out.audio_samples >= 24_000 and out.video_frames == 0, out


@pytest.mark.parametrize(
    ("camera", "plid", "pt"), [("high_camera", "640028", "106"), ("main_camera", "4d4028", "104")]
)
def test_1080p_file_sources(camera, plid, pt, request):
    """High -> the 640032 payload type, Main -> 4d0032: the first offered that decodes it,
    stating the source's own profile-level-id."""
    out = view_with_webrtcbin(request.getfixturevalue(camera), "audio,video", "max-bundle")
    assert out.reply.kind == "answer", out.reply
    assert f"a=fmtp:{pt} " in out.reply.sdp and f"profile-level-id={plid}" in out.reply.sdp
    assert out.video_frames >= 10 and (out.width, out.height) == (1920, 1080), out
    assert out.audio_samples >= 24_000, out
