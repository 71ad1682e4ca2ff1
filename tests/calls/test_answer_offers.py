"""The node answers exactly what a third-party viewer offered, with the REAL
MediaPublisher (a test pattern encoded once, and a tone): any subset of m-lines, the
offer's bundling (or none: one overlay socket per m-line), the DTLS server role for a
client with an RSA certificate, an H.264 payload type chosen by the source's SPS, and a
signed `bad-offer` naming what is missing when the offer cannot be served.

The viewer is a plain aiortc peer connection on loopback (127.0.0.2); the camera a
CallManager on 127.0.0.1 answering signed view-requests."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest
from aiortc import RTCSessionDescription
from aiortc.rtcdtlstransport import RTCCertificate, generate_certificate
from cryptography.hazmat.primitives.asymmetric import rsa

from node.calls import CallManager
from node.config import Config
from node.ice import IcePolicy, OverlayPeerConnection, ice_connections, sdp_addresses
from node.links import LinkOpener, ReplayCache, make_link
from node.media import MediaPublisher
from node.media.audio import ToneSource
from node.media.filesource import FileSource
from node.media.hooks import dtls_roles, prefer_h264
from node.media.testsrc import TestPatternSource
from node.overlay.static import StaticProvider

from .helpers import CountingReceiver

CAM, VIEWER = "127.0.0.1", "127.0.0.2"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def publisher():
    pub = MediaPublisher(TestPatternSource(320, 240, 15, gop=15, seconds=1.0), ToneSource())
    await pub.start()
    yield pub
    await pub.stop()


@pytest.fixture
def camera(make_node, publisher):
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view", address=VIEWER)
    viewer.trust(cam, "view", address=CAM)
    opener = LinkOpener(cam.identity, cam.peers, ReplayCache(cam.home.replay_db), skew=30)
    manager = CallManager(cam.identity, Config(), cam.peers, StaticProvider(address=CAM), publisher, opener)
    return Camera(manager, cam, viewer)


class Camera:
    def __init__(self, manager, cam, viewer):
        self.manager, self.cam, self.viewer = manager, cam, viewer
        self.pcs: list = []

    def viewer_pc(self, *, bundle: bool = True, rsa_certificate: bool = False):
        pc = OverlayPeerConnection(IcePolicy.make([VIEWER], [CAM]), answering=not bundle)
        if rsa_certificate:  # what GStreamer's webrtcbin uses by default
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pc._RTCPeerConnection__certificates = [RTCCertificate(key=key, cert=generate_certificate(key))]
        self.pcs.append(pc)
        return pc

    async def offer(self, pc, kinds=("audio", "video"), *, bundle: bool = True, edit=None) -> str:
        for kind in kinds:
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            if kind == "video":
                prefer_h264(transceiver)
        offer = await pc.createOffer()
        sdp = offer.sdp if bundle else re.sub(r"a=group:BUNDLE[^\r\n]*\r\n", "", offer.sdp)
        await pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        sdp = pc.localDescription.sdp
        return edit(sdp) if edit else sdp

    async def ask(self, sdp: str):
        link = make_link(self.viewer.identity, "view-request", self.cam.node_id, sdp=sdp)
        reply = await self.manager.handle_link(link.text)
        opener = LinkOpener(self.viewer.identity, self.viewer.peers, None, skew=30)
        return opener.open(reply, expect_offer=link.digest).claims

    async def close(self):
        await self.manager.close()
        for pc in self.pcs:
            await pc.close()


@pytest.fixture
async def cam(camera):
    yield camera
    await camera.close()


def m_lines(sdp: str) -> list[str]:
    return [line[2:].split()[0] for line in sdp.splitlines() if line.startswith("m=")]


async def until(cond, timeout: float = 20) -> None:
    """Poll `cond` (counters other tasks update) until true, at most `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise TimeoutError(f"not within {timeout} s")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("kinds", [("video",), ("audio",), ("audio", "video")])
async def test_answers_exactly_the_offered_m_lines(cam, kinds):
    pc = cam.viewer_pc()
    receiver = CountingReceiver(pc)
    claims = await cam.ask(await cam.offer(pc, kinds))
    assert claims.kind == "answer", claims.err
    assert m_lines(claims.sdp) == list(kinds)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=claims.sdp, type="answer"))
    await until(
        lambda: (
            ("video" not in kinds or receiver.video_frames >= 5)
            and ("audio" not in kinds or receiver.audio_frames >= 5)
        )
    )
    assert ("video" in kinds) == (receiver.video_frames > 0)
    assert ("audio" in kinds) == (receiver.audio_frames > 0)


async def test_an_unbundled_offer_gets_an_unbundled_answer_on_the_overlay(cam):
    pc = cam.viewer_pc(bundle=False)
    receiver = CountingReceiver(pc)
    offer = await cam.offer(pc, bundle=False)
    assert "a=group:BUNDLE" not in offer
    claims = await cam.ask(offer)
    assert claims.kind == "answer", claims.err
    assert "a=group:BUNDLE" not in claims.sdp
    ports = {line.split()[1] for line in claims.sdp.splitlines() if line.startswith("m=")}
    assert len(ports) == 2  # one overlay socket per m-line
    found = sdp_addresses(claims.sdp)
    assert set(found["candidate"]) == {CAM} and set(found["c"]) == {CAM}
    (served,) = cam.manager.active()
    assert len(ice_connections(served.pc)) == 2
    await pc.setRemoteDescription(RTCSessionDescription(sdp=claims.sdp, type="answer"))
    await until(lambda: receiver.video_frames >= 5 and receiver.audio_frames >= 5)


async def test_a_bundled_offer_keeps_one_socket(cam):
    pc = cam.viewer_pc()
    claims = await cam.ask(await cam.offer(pc))
    assert re.search(r"a=group:BUNDLE 0 1\r\n", claims.sdp)
    (served,) = cam.manager.active()
    assert len(ice_connections(served.pc)) == 1


async def test_a_client_with_an_rsa_certificate_connects(cam):
    """The node answers setup:passive (DTLS server, ECDSA key): the RSA client's suites
    include ECDHE-ECDSA. As DTLS client (setup:active) aiortc offers ECDSA suites only,
    which an RSA server cannot pick ("no shared cipher")."""
    pc = cam.viewer_pc(rsa_certificate=True)
    receiver = CountingReceiver(pc)
    offer = await cam.offer(pc)
    assert "a=setup:actpass" in offer
    claims = await cam.ask(offer)
    assert claims.kind == "answer", claims.err
    assert set(re.findall(r"a=setup:(\w+)", claims.sdp)) == {"passive"}
    (served,) = cam.manager.active()
    assert set(dtls_roles(served.pc)) == {"server"}
    await pc.setRemoteDescription(RTCSessionDescription(sdp=claims.sdp, type="answer"))
    await until(lambda: receiver.video_frames >= 5 and receiver.audio_frames >= 5)


async def test_an_offer_that_wants_to_be_dtls_server_keeps_that_role(cam):
    pc = cam.viewer_pc()
    offer = await cam.offer(pc, edit=lambda s: s.replace("a=setup:actpass", "a=setup:passive"))
    claims = await cam.ask(offer)
    assert set(re.findall(r"a=setup:(\w+)", claims.sdp)) == {"active"}


def _only_h264(sdp: str, fmtp: str) -> str:
    """Video m-line reduced to one H.264 payload type 96 with these fmtp parameters."""
    out, in_video = [], False
    for raw in sdp.splitlines():
        line = raw
        if line.startswith("m="):
            in_video = line.startswith("m=video")
            if in_video:
                line = " ".join([*line.split()[:3], "96"])
        elif in_video and re.match(r"a=(rtpmap|fmtp|rtcp-fb):\d+", line):
            continue
        out.append(line)
        if in_video and line.startswith("a=mid:"):
            out += (
                ["a=rtpmap:96 H264/90000", "a=rtcp-fb:96 nack pli", f"a=fmtp:96 {fmtp}"]
                if fmtp
                else ["a=rtpmap:96 VP8/90000"]
            )
    return "\r\n".join(out) + "\r\n"


@pytest.mark.parametrize(
    ("fmtp", "missing"),
    [
        ("", "has no H.264 (offered: VP8)"),
        ("packetization-mode=0;profile-level-id=42e01f", "packetization-mode=1"),
        ("packetization-mode=1;profile-level-id=4d001f", "Constrained Baseline"),  # see below
    ],
)
async def test_what_the_camera_cannot_send_is_a_signed_bad_offer(cam, fmtp, missing):
    pc = cam.viewer_pc()
    claims = await cam.ask(await cam.offer(pc, edit=lambda s: _only_h264(s, fmtp)))
    if "4d001f" in fmtp:  # a Main decoder decodes Constrained Baseline: served
        assert claims.kind == "answer", claims.err
        assert "a=fmtp:96 packetization-mode=1" in claims.sdp
        assert re.search(r"profile-level-id=42[ce]0", claims.sdp)  # the source's own SPS
        return
    assert claims.kind == "error" and claims.err["code"] == "bad-offer", claims.err
    assert missing in claims.err["message"]


async def test_audio_without_a_codec_the_node_sends_is_a_bad_offer(cam):
    def g722_only(sdp: str) -> str:
        lines = []
        for line in sdp.splitlines():
            if line.startswith("m=audio"):
                lines.append(" ".join([*line.split()[:3], "9"]))
            elif not re.match(r"a=(rtpmap|fmtp|rtcp-fb):(0|8|96|111)\b", line):
                lines.append(line)
        return "\r\n".join(lines) + "\r\n"

    pc = cam.viewer_pc()
    claims = await cam.ask(await cam.offer(pc, ("audio",), edit=g722_only))
    assert claims.err["code"] == "bad-offer"
    assert "Opus, PCMU or PCMA" in claims.err["message"] and "G722" in claims.err["message"]


async def test_an_offer_without_candidates_is_told_no_trickle(cam):
    pc = cam.viewer_pc()
    offer = await cam.offer(pc, edit=lambda s: re.sub(r"a=candidate:[^\r\n]*\r\n", "", s))
    claims = await cam.ask(offer)
    assert claims.err["code"] == "no-candidate"
    assert "no trickle" in claims.err["message"]


async def test_an_offer_with_only_mdns_names_is_told_what_a_page_must_do(cam):
    pc = cam.viewer_pc()
    offer = await cam.offer(
        pc, edit=lambda s: s.replace(f" {VIEWER} ", " 1f0c2d3e-aaaa-bbbb-cccc-0123456789ab.local ")
    )
    claims = await cam.ask(offer)
    assert claims.err["code"] == "no-candidate"
    assert ".local" in claims.err["message"] and "permission" in claims.err["message"]


@pytest.fixture(scope="module")
def high_clip(tmp_path_factory):
    """1 s of 320x240 H.264 High profile (CABAC + 8x8 transforms), no B-frames."""
    path = tmp_path_factory.mktemp("high") / "high.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=15",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-bf",
            "0",
            "-g",
            "15",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


class Direct:
    def __init__(self, manager: CallManager):
        self.manager = manager
        self.answers: list[str] = []

    async def request(self, peer, link_text: str, timeout: float) -> str:
        reply = await asyncio.wait_for(self.manager.handle_link(link_text), timeout)
        self.answers.append(reply)
        return reply


async def test_a_media_node_viewer_sees_a_high_profile_camera(make_node, high_clip):
    """The node's own viewer offers Constrained Baseline, Baseline, Main and High: a
    High source is answered on the High payload type, stating its own SPS profile."""
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view", address=VIEWER)
    viewer.trust(cam, "view", address=CAM)
    publisher = MediaPublisher(FileSource(high_clip), None)
    await publisher.start()
    cam_m = CallManager(
        cam.identity,
        Config(),
        cam.peers,
        StaticProvider(address=CAM),
        publisher,
        LinkOpener(cam.identity, cam.peers, ReplayCache(cam.home.replay_db), skew=30),
    )
    view_m = CallManager(
        viewer.identity,
        Config(),
        viewer.peers,
        StaticProvider(address=VIEWER),
        None,
        LinkOpener(viewer.identity, viewer.peers, ReplayCache(viewer.home.replay_db), skew=30),
        receiver_factory=CountingReceiver,
    )
    transport = Direct(cam_m)
    try:
        call = await view_m.view(viewer.peers.find("cam"), transport)
        answer = LinkOpener(viewer.identity, None, None, skew=30).open(transport.answers[0]).claims.sdp
        assert re.findall(r"profile-level-id=([0-9a-f]{6})", answer) == [
            publisher.video.info().profile_level_id
        ]
        assert publisher.video.info().profile_level_id.startswith("64")
        await until(lambda: call.receiver.video_frames >= 5)
    finally:
        await view_m.close()
        await cam_m.close()
        await publisher.stop()
