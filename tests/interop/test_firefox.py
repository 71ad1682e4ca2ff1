"""Headless Debian Firefox ESR (offline: no OpenH264, so no H.264) against the camera.

Firefox gathers on the default-route interface only, as an mDNS `.local` name unless
`media.peerconnection.ice.obfuscate_host_addresses` is false, with or without media
permission. So with the overlay on its own interface it cannot reach the node at all
(a signed no-candidate says why); when the overlay carries the default route (a
full-tunnel VPN) and that pref is off, it views audio; video needs H.264, which this
Firefox only has once it has downloaded OpenH264."""

from __future__ import annotations

import contextlib

import pytest

from .clients import view_with_browser
from .lab import OVERLAY

pytestmark = pytest.mark.timeout(120)


@contextlib.contextmanager
def firefox(user_lab, page_url, profile, prefs=None):
    from browsers import Firefox

    with Firefox(profile, netns=user_lab.ns["user"].name, prefs=prefs) as browser:
        browser.open(page_url)
        yield browser


def test_stock_firefox_gets_a_no_candidate_that_says_why(testsrc_camera, user_lab, page_url, tmp_path):
    with firefox(user_lab, page_url, tmp_path / "ff") as browser:
        out = view_with_browser(testsrc_camera, browser, "audio,video", permission=False)
    assert "H264" not in out.offer  # offline ESR: VP8, VP9, AV1 only
    cands = [ln.split()[4] for ln in out.offer.splitlines() if ln.startswith("a=candidate:")]
    assert cands and all(c.endswith(".local") for c in cands)
    assert (out.reply.code, ".local" in out.reply.message) == ("no-candidate", True)


def test_firefox_over_a_full_tunnel_overlay_views_audio(testsrc_camera, user_lab, page_url, tmp_path):
    user = user_lab.ns["user"]
    user.ip("route", "replace", "default", "via", OVERLAY["cam"], "dev", "ovl0")
    try:
        prefs = {"media.peerconnection.ice.obfuscate_host_addresses": False}
        with firefox(user_lab, page_url, tmp_path / "ff", prefs) as browser:
            video = view_with_browser(testsrc_camera, browser, "video", permission=False)
            audio = view_with_browser(testsrc_camera, browser, "audio", permission=False)
    finally:
        user.ip("route", "replace", "default", "via", "169.254.88.1", "dev", "lan0")
    assert video.reply.code == "bad-offer" and "no H.264" in video.reply.message, video.reply
    assert audio.reply.kind == "answer", audio.reply
    assert audio.audio_samples >= 24_000, audio
