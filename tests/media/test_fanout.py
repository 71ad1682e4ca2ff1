"""One source, many viewers: bounded queues, IDR starts, overflow resync, one rate-
limited keyframe request for everyone."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import MediaStreamError

from node.media.fanout import Fanout, KeyframeLimiter
from node.media.filesource import FileSource
from node.media.track import EncodedVideoTrack


class Tap:
    def __init__(self, fanout):
        self.aus = []
        original = fanout.push

        def push(au):
            self.aus.append(au)
            original(au)

        fanout.push = push


async def test_four_viewers_one_stops_reading(clip_dir):
    source = FileSource(clip_dir / "clip.h264")  # 30 fps, IDR every 15 frames
    fanout = Fanout(source, queue_size=8, keyframe_interval=0.2)
    tap = Tap(fanout)
    await fanout.start()
    tracks = [EncodedVideoTrack(fanout.join(f"v{i}")) for i in range(4)]
    got: list[list] = [[] for _ in tracks]
    slow_paused = asyncio.Event()
    resume = asyncio.Event()

    async def read(i: int, track: EncodedVideoTrack):
        while len(got[i]) < 10_000:
            packet = await track.recv()
            got[i].append(bytes(packet))
            if i == 3 and len(got[i]) == 10:
                slow_paused.set()
                await resume.wait()  # this viewer stops reading

    readers = [asyncio.create_task(read(i, t)) for i, t in enumerate(tracks)]
    try:
        await asyncio.wait_for(slow_paused.wait(), 20)
        slow_viewer = tracks[3].viewer
        for _ in range(400):  # until its queue overflowed and it skipped to an IDR
            if slow_viewer.overflows and len(tap.aus) > 60:
                break
            await asyncio.sleep(0.025)
        assert slow_viewer.overflows >= 1
        paused_at = len(got[3])
        resume.set()
        for _ in range(400):
            if len(got[3]) > paused_at + 20:
                break
            await asyncio.sleep(0.025)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await fanout.stop()

    produced = [au.data for au in tap.aus]
    for i in range(3):  # the fast viewers: every frame from their first IDR on, none dropped
        start = produced.index(got[i][0])
        assert tap.aus[start].keyframe
        assert got[i] == produced[start : start + len(got[i])]
        assert len(got[i]) >= len(produced) - start - 2  # at most the last in flight
        assert tracks[i].viewer.dropped == 0 and tracks[i].viewer.overflows == 0
    slow = got[3]
    resumed = slow[paused_at:]
    assert resumed, "the slow viewer never resumed"
    first = next(au for au in tap.aus if au.data == resumed[0])
    assert first.keyframe, "the slow viewer resumed on a P-frame"
    start = produced.index(resumed[0])
    assert resumed == produced[start : start + len(resumed)]
    assert tracks[3].viewer.dropped > 0


async def test_keyframe_requests_are_coalesced():
    now = [0.0]
    calls = []
    limiter = KeyframeLimiter(lambda: calls.append(now[0]), min_interval=0.5, clock=lambda: now[0])
    limiter()
    assert calls == [0.0]
    now[0] = 0.1
    for _ in range(5):  # five viewers' PLIs inside the interval: one deferred request
        limiter()
    assert len(calls) == 1
    await asyncio.sleep(0.6)
    assert len(calls) == 2 and limiter.asked == 6 and limiter.sent == 2
    limiter.cancel()


async def test_new_viewer_starts_on_an_idr_it_asked_for(clip_dir):
    source = FileSource(clip_dir / "clip.h264")
    fanout = Fanout(source, queue_size=30)
    await fanout.start()
    try:
        await asyncio.wait_for(fanout.first_au_event.wait(), 10)
        await asyncio.sleep(0.2)
        asked = source.keyframe_requests
        track = EncodedVideoTrack(fanout.join("late"))
        first = await asyncio.wait_for(track.recv(), 10)
        assert source.keyframe_requests == asked + 1
        from node.media.annexb import is_idr

        assert is_idr(bytes(first)) and first.pts == 0
        second = await asyncio.wait_for(track.recv(), 10)
        assert second.pts > first.pts and second.time_base.denominator == 1_000_000
        track.stop()
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(track.recv(), 5)
        assert not fanout.viewers
    finally:
        await fanout.stop()


async def test_attach_detach_leaves_nothing_behind(clip_dir):
    """Many calls in a row: every attachment's viewer, audio subscription and hooks go."""
    from node.media import MediaPublisher
    from node.media.audio import ToneSource

    from .conftest import loopback_pc

    publisher = MediaPublisher(FileSource(clip_dir / "clip.h264"), ToneSource())
    await publisher.start()
    try:
        for i in range(40):
            pc = loopback_pc()
            attachment = publisher.attach(pc, name=f"call-{i}")
            assert len(publisher.fanout.viewers) == 1
            if i % 2:
                attachment.detach()
            await pc.close()  # closing alone detaches too (connectionstatechange)
            assert attachment.detached
            assert not publisher.fanout.viewers and not publisher.audio_hub._tracks
            assert not publisher._attachments
    finally:
        await publisher.stop()


class _ManualSource:
    kind = "manual"

    def __init__(self):
        self.keyframe_requests = 0

    def request_keyframe(self):
        self.keyframe_requests += 1

    def start(self, sink):
        pass

    def stop(self):
        pass


async def test_overflow_drops_to_the_next_idr_and_asks_for_one():
    from node.media.source import AccessUnit

    source = _ManualSource()
    fanout = Fanout(source, queue_size=3, keyframe_interval=0.0)
    viewer = fanout.join("v")
    assert source.keyframe_requests == 1  # asked at join
    P = lambda n: AccessUnit(b"P%d" % n, n, False)  # noqa: E731
    I = lambda n: AccessUnit(b"I%d" % n, n, True)  # noqa: E731, E741
    for au in (P(0), I(1), P(2), P(3), P(4)):
        fanout.push(au)
    assert (viewer.skipped, viewer.delivered, viewer.overflows) == (1, 3, 1)
    assert viewer.dropped == 4 and viewer.waiting_for_idr and source.keyframe_requests == 2
    fanout.push(P(5))
    fanout.push(I(6))
    assert (await viewer.get()).data == b"I6"
    for au in (P(7), P(8), P(9), I(10)):  # overflow on an IDR: resume right there
        fanout.push(au)
    assert viewer.overflows == 2 and not viewer.waiting_for_idr and source.keyframe_requests == 2
    assert (await viewer.get()).data == b"I10"


async def test_a_stalled_source_is_restarted(clip_dir):
    """The source's thread dies (a camera failure): the watchdog restarts it."""
    source = FileSource(clip_dir / "clip.h264")
    fanout = Fanout(source, stall_timeout=0.5)
    await fanout.start()
    try:
        await asyncio.wait_for(fanout.first_au_event.wait(), 10)
        source._worker.stop_event.set()  # the delivery thread ends as if it crashed
        for _ in range(200):
            if fanout.restarts:
                break
            await asyncio.sleep(0.05)
        assert fanout.restarts == 1
        pushed = fanout.pushed
        for _ in range(200):
            if fanout.pushed > pushed + 5:
                break
            await asyncio.sleep(0.05)
        assert fanout.pushed > pushed + 5 and fanout.restarts == 1
    finally:
        await fanout.stop()


def test_bitrate_is_the_smallest_viewer_estimate_within_bounds():
    from node.media.publisher import BitrateController, MediaPolicy

    applied = []
    control = BitrateController(
        applied.append, MediaPolicy(start_bitrate=2_000_000, min_bitrate=300_000, max_bitrate=3_000_000)
    )
    a, b = object(), object()
    control.remb(a, 2_500_000)
    control.remb(b, 1_000_000)
    assert applied[-1] == 1_000_000  # the slowest viewer decides
    control.remb(b, 1_050_000)
    assert applied[-1] == 1_000_000  # under 10 %: no encoder reconfiguration
    control.loss(b, 0.5)
    assert applied[-1] == 787_500  # 1.05 Mb/s estimate, cut by a quarter at 50 % loss
    for _ in range(20):
        control.loss(b, 0.0)  # clean reports: slow recovery
    assert applied[-1] > 1_500_000
    control.remb(b, 10_000)
    assert applied[-1] == 300_000  # clamped to the profile's minimum
    control.remove(b)
    assert applied[-1] == 2_500_000  # the remaining viewer's estimate
