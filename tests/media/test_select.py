"""Building the publisher from config.media and a board profile."""

from __future__ import annotations

import pytest

from node.config import MediaSection
from node.media import MediaError, apply_overrides, make_publisher
from node.profiles import load_profile


def test_profile_defaults_and_bounds_with_explicit_sources(clip_dir):
    media = MediaSection()
    apply_overrides(media, video=f"file:{clip_dir / 'clip.ts'}", audio="tone")
    publisher = make_publisher(media, profile=load_profile("pi4"))
    assert (publisher.policy.start_bitrate, publisher.policy.min_bitrate, publisher.policy.max_bitrate) == (
        2_500_000,
        300_000,
        4_000_000,
    )
    described = publisher.describe()
    assert described["video"]["kind"] == "file" and described["video"]["label"] == "passthrough"
    assert described["audio"]["kind"] == "tone"


async def test_absent_profile_camera_is_unavailable_never_a_test_pattern():
    publisher = make_publisher(MediaSection(), profile=load_profile("generic-uvc"))
    if publisher.video.inner.kind == "v4l2" and __import__("os").path.exists("/dev/video0"):
        pytest.skip("this machine has /dev/video0")
    assert publisher.video.kind == "v4l2"  # the profile's own source, not a substitute
    assert publisher.audio_optional  # alsa:default is a profile default, not asked for
    publisher.audio = publisher.audio_hub = None
    await publisher.start()
    try:
        assert publisher.source_state() == "unavailable"
        assert "/dev/video0" in publisher.unavailable_reason()
        assert publisher.video.retrying() and publisher.healthy()  # a state, not an illness
        assert publisher.describe()["video"]["state"] == "unavailable"
    finally:
        await publisher.stop()


def test_no_video_source_at_all_is_unavailable_with_the_setting_to_fix():
    publisher = make_publisher(MediaSection(), profile=load_profile("rtsp-camera"))
    assert publisher.video.kind == "none"
    assert "set media.video" in publisher.video.inner.why


async def test_missing_default_microphone_means_no_audio_not_a_crash(clip_dir):
    media = MediaSection(video=f"file:{clip_dir / 'clip.h264'}", audio="")
    publisher = make_publisher(media, profile=load_profile("pi4"))  # alsa:default
    publisher.audio.device = "no_such_pcm_for_media_node"
    await publisher.start()
    try:
        assert publisher.describe()["audio"] is None
    finally:
        await publisher.stop()


async def test_explicit_microphone_that_fails_is_an_error(clip_dir):
    media = MediaSection(video=f"file:{clip_dir / 'clip.h264'}", audio="alsa:no_such_pcm_for_media_node")
    publisher = make_publisher(media, profile=load_profile("pi4"))
    with pytest.raises(MediaError, match="no_such_pcm_for_media_node"):
        await publisher.start()


def test_overrides_are_validated():
    media = MediaSection()
    with pytest.raises(MediaError, match="use one of"):
        apply_overrides(media, video="webcam")
    assert media.video == ""
