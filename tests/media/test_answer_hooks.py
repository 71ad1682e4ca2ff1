"""The aiortc internals the answer path relies on, exercised for real (they fail loudly
when an aiortc upgrade changes them; aiortc is pinned to 1.16.0):

- `transceiver._codecs`, filled by setRemoteDescription, is what createAnswer writes
  and the sender uses (hooks.state_h264 restates the H.264 payload type there);
- a local answer's a=setup sets the DTLS transport's role (`RTCDtlsTransport._role`);
- as DTLS client aiortc offers ECDHE-ECDSA suites only (why the node answers passive);
- `aiortc.codecs.CODECS["video"]` is the list aiortc offers and matches from."""

from __future__ import annotations

import inspect

from aiortc import RTCSessionDescription
from aiortc.codecs import CODECS
from aiortc.rtcdtlstransport import RTCCertificate

from node.media import hooks

from .conftest import loopback_pc


async def _offer_answer(kind: str = "video"):
    viewer, camera = loopback_pc(), loopback_pc()
    transceiver = viewer.addTransceiver(kind, direction="recvonly")
    if kind == "video":  # one H.264 payload type, as in the node's reduced offers
        transceiver.setCodecPreferences(hooks.h264_preferences(profiles=("42e01f",)))
    await viewer.setLocalDescription(await viewer.createOffer())
    await camera.setRemoteDescription(viewer.localDescription)
    return viewer, camera


async def test_negotiated_codecs_are_what_the_answer_states():
    viewer, camera = await _offer_answer()
    try:
        (transceiver,) = camera.getTransceivers()
        h264 = next(c for c in transceiver._codecs if c.mimeType.lower() == "video/h264")
        rtx = {c.payloadType for c in transceiver._codecs if c.mimeType.lower() == "video/rtx"}
        hooks.state_h264(transceiver, 45, {"packetization-mode": "1", "profile-level-id": "640028"}, {45})
        assert [c.payloadType for c in transceiver._codecs] == [45]  # unoffered RTX dropped
        assert rtx  # (it was there)
        answer = (await camera.createAnswer()).sdp
        assert "m=video 9 UDP/TLS/RTP/SAVPF 45\r\n" in answer
        assert "a=fmtp:45 packetization-mode=1;profile-level-id=640028" in answer
        assert h264.payloadType == 45
    finally:
        await camera.close()
        await viewer.close()


async def test_a_local_answers_setup_sets_the_dtls_role():
    viewer, camera = await _offer_answer()
    try:
        answer = (await camera.createAnswer()).sdp
        assert "a=setup:active" in answer  # aiortc's own choice for an actpass offer
        passive = answer.replace("a=setup:active", "a=setup:passive")
        await camera.setLocalDescription(RTCSessionDescription(sdp=passive, type="answer"))
        assert hooks.dtls_roles(camera) == ["server"]
        assert "a=setup:passive" in camera.localDescription.sdp
    finally:
        await camera.close()
        await viewer.close()


def test_aiortc_as_dtls_client_offers_ecdsa_suites_only():
    source = inspect.getsource(RTCCertificate._create_ssl_context)
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in source and "RSA" not in source.replace("ECDSA", "")


def test_main_and_high_are_added_to_aiortcs_codec_list_once():
    hooks.install_h264_codecs()
    hooks.install_h264_codecs()
    profiles = [c.parameters.get("profile-level-id") for c in CODECS["video"] if c.mimeType == "video/H264"]
    assert profiles == ["42001f", "42e01f", "4d001f", "64001f"]
    pts = [c.payloadType for c in CODECS["video"]]
    assert len(pts) == len(set(pts)) and all(96 <= pt <= 127 for pt in pts)
    prefs = hooks.h264_preferences(profiles=hooks.H264_RECEIVE_PROFILES)
    assert [c.parameters.get("profile-level-id") for c in prefs if c.mimeType == "video/H264"] == list(
        hooks.H264_RECEIVE_PROFILES
    )
