"""Headless Debian Chromium views `media-node run` through the file drop."""

from __future__ import annotations

import pytest

from .clients import view_with_browser


@pytest.mark.parametrize("bundle", ["", "max-bundle"])
def test_audio_and_video(testsrc_camera, chromium, bundle):
    out = view_with_browser(testsrc_camera, chromium, "audio,video", bundle)
    assert out.reply.kind == "answer", out.reply
    assert out.video_frames >= 10, out
    assert (out.width, out.height) == (640, 480)
    assert out.audio_samples >= 24_000, out
