"""Headless Debian Chromium 156 views `media-node run` through the file drop, from a
page served on http://127.0.0.1 that holds microphone permission (without it, Chromium
gathers one mDNS name on the default-route interface only: see the last test).

Chromium offers H.264 42001f, 42e01f, 4d001f and f4001f (packetization-mode 0 and 1):
Constrained Baseline -> 42001f (Baseline decodes it; first in its order), Main ->
4d001f, High -> f4001f (a High 4:4:4 Predictive decoder decodes High)."""

from __future__ import annotations

import re

import pytest

from .clients import view_with_browser

pytestmark = pytest.mark.timeout(120)


def _fmtp(sdp: str) -> list[str]:
    return re.findall(r"profile-level-id=([0-9a-f]{6})", sdp)


def _offered_pt(offer: str, plid: str) -> str:
    return re.search(
        rf"a=fmtp:(\d+) level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={plid}", offer
    )[1]


@pytest.mark.parametrize("bundle", ["", "max-bundle"])
def test_audio_and_video(testsrc_camera, chromium, bundle):
    out = view_with_browser(testsrc_camera, chromium, "audio,video", bundle)
    assert out.reply.kind == "answer", out.reply
    assert out.video_frames >= 10, out
    assert (out.width, out.height) == (640, 480)
    assert out.audio_samples >= 24_000, out
    assert out.errors == []


def test_video_only(testsrc_camera, chromium):
    out = view_with_browser(testsrc_camera, chromium, "video")
    assert out.reply.kind == "answer", out.reply
    assert [ln.split()[0] for ln in out.reply.sdp.splitlines() if ln.startswith("m=")] == ["m=video"]
    assert out.video_frames >= 10 and (out.width, out.height) == (640, 480), out


@pytest.mark.parametrize(
    ("camera", "plid", "covering"), [("high_camera", "640028", "f4001f"), ("main_camera", "4d4028", "4d001f")]
)
def test_1080p_file_sources(camera, plid, covering, chromium, request):
    out = view_with_browser(request.getfixturevalue(camera), chromium, "audio,video")
    assert out.reply.kind == "answer", out.reply
    pt = _offered_pt(out.offer, covering)
    assert f"a=fmtp:{pt} " in out.reply.sdp and _fmtp(out.reply.sdp) == [plid], out.reply.sdp
    assert out.video_frames >= 10 and (out.width, out.height) == (1920, 1080), out
    assert out.audio_samples >= 24_000, out


def test_without_media_permission_the_page_is_told_what_to_do(testsrc_camera, chromium):
    """Only an mDNS name, on the LAN interface: a signed no-candidate saying why."""
    out = view_with_browser(testsrc_camera, chromium, "audio,video", permission=False)
    cands = [ln for ln in out.offer.splitlines() if ln.startswith("a=candidate:")]
    assert cands and all(".local " in c for c in cands)
    assert (out.reply.kind, out.reply.code) == ("error", "no-candidate")
    assert ".local" in out.reply.message and "permission" in out.reply.message
