"""A stock GStreamer webrtcbin views `media-node run` through the file drop."""

from __future__ import annotations

import pytest

from .clients import view_with_webrtcbin


@pytest.mark.parametrize("bundle", ["none", "max-bundle"])
def test_audio_and_video(testsrc_camera, bundle):
    out = view_with_webrtcbin(testsrc_camera, "audio,video", bundle)
    assert out.reply.kind == "answer", out.reply
    assert out.video_frames >= 10, out
    assert (out.width, out.height) == (640, 480)
    assert out.audio_samples >= 24_000, out
