"""Snapshots: one keyframe from the fan-out decoded to a JPEG at the source's size, only
when asked and at most once per min_interval; nothing else ever decodes."""

from __future__ import annotations

import io

import av
import pytest

from node.media.fanout import Fanout
from node.media.filesource import FileSource
from node.media.snapshot import SnapshotError, Snapshotter, keyframe_to_jpeg
from node.media.source import EncodedVideoSource


def decoded_size(jpeg: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(jpeg), format="image2pipe") as c:
        frame = next(c.decode(video=0))
        return frame.width, frame.height


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_snapshot_is_a_jpeg_at_the_sources_size_and_rate_limited(clip_dir):
    source = FileSource(str(clip_dir / "clip.h264"))
    fanout = Fanout(source)
    await fanout.start()
    clock = Clock()
    snapper = Snapshotter(fanout, min_interval=5.0, clock=clock)
    try:
        first = await snapper.take()
        assert first.jpeg[:2] == b"\xff\xd8" and first.jpeg[-2:] == b"\xff\xd9"
        info = source.info()
        assert (first.width, first.height) == (info.width, info.height) == (320, 240)
        assert decoded_size(first.jpeg) == (320, 240)
        assert b"Lavc" not in first.jpeg, "no encoder version string in the file"
        clock.now += 1.0
        assert await snapper.take() is first, "inside min_interval: the last picture again"
        assert snapper.decodes == 1
        clock.now += 5.0
        second = await snapper.take()
        assert second is not first and snapper.decodes == 2
        assert not fanout.viewers, "the snapshot's viewer left the fan-out"
    finally:
        await fanout.stop()


def test_the_quality_steps_down_until_the_jpeg_fits(clip_dir):
    from node.media.testsrc import encode_pattern

    idr = encode_pattern(640, 480, 30, seconds=0.1)[0]
    best = keyframe_to_jpeg(idr, 4_000_000)
    small = keyframe_to_jpeg(idr, len(best.jpeg) - 1)
    assert small.quality > best.quality and len(small.jpeg) < len(best.jpeg)
    assert decoded_size(small.jpeg) == (640, 480)
    with pytest.raises(SnapshotError, match="does not fit") as e:
        keyframe_to_jpeg(idr, 500)
    assert e.value.reason == "too-large"


def test_garbage_is_a_decode_error_not_a_crash():
    with pytest.raises(SnapshotError) as e:
        keyframe_to_jpeg(b"\x00\x00\x00\x01\x65" + b"\xff" * 64, 100_000)
    assert e.value.reason == "decode-failed"


class Silent(EncodedVideoSource):
    kind = "silent"

    def _start(self) -> None:
        pass

    def _stop(self) -> None:
        pass


async def test_a_camera_that_sends_nothing_is_unavailable_in_bounded_time():
    fanout = Fanout(Silent(), stall_timeout=None)
    await fanout.start()
    try:
        with pytest.raises(SnapshotError, match="no keyframe") as e:
            await Snapshotter(fanout, keyframe_wait=0.3).take()
        assert e.value.reason == "unavailable" and not fanout.viewers
    finally:
        await fanout.stop()
