"""Calls in a row leave nothing behind (reliability: "every call, when it ends,
releases its sockets, tasks and threads"). Two CallManagers in one process on loopback,
the real MediaPublisher (test pattern + tone, fan-out, hooks) on the camera and the real
MediaReceiver on the viewer: after a warm-up, N view calls in a row (each until its first
video frame, then hung up by the viewer) must not add live tasks, threads, fds, or live
instances of any per-call class, ours or aiortc's/aioice's, once the garbage collector ran.

Object counts, not RSS: the daemon's RSS does creep by some KiB per call, but that is
glibc keeping freed heap (malloc_trim(0) returns it), not live objects; see
docs/benchmarks.md §5."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections import Counter

import aioice
from aiortc import RTCDtlsTransport, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSctpTransport

from node.calls import Call, CallManager
from node.config import Config
from node.links import LinkOpener, ReplayCache
from node.media import MediaReceiver
from node.media.audio import ToneSource
from node.media.fanout import Viewer
from node.media.publisher import Attachment, MediaPolicy, MediaPublisher
from node.media.testsrc import TestPatternSource
from node.media.track import EncodedVideoTrack
from node.overlay.static import StaticProvider

CAM, VIEWER = "127.0.0.1", "127.0.0.2"
WARM_UP = 5
CALLS = 100

# Every class a call instantiates and must give back (subclasses count as their base).
PER_CALL = (
    Call,
    Attachment,
    Viewer,
    EncodedVideoTrack,
    MediaReceiver,
    RTCPeerConnection,
    RTCDtlsTransport,
    RTCSctpTransport,
    RTCRtpSender,
    RTCRtpReceiver,
    aioice.Connection,
)


class Direct:
    """The viewer's transport: hands the signed link straight to the camera's manager."""

    def __init__(self, manager: CallManager):
        self.manager = manager

    async def request(self, peer, link_text: str, timeout: float) -> str:
        return await asyncio.wait_for(self.manager.handle_link(link_text), timeout)


def _live() -> Counter:
    """Live instances of PER_CALL (by base class), after a full collection: aiortc's peer
    connections sit in reference cycles and are freed by the collector, not refcounts."""
    gc.collect()
    found: Counter = Counter()
    for obj in gc.get_objects():
        for cls in PER_CALL:
            if isinstance(obj, cls):
                found[cls.__name__] += 1
    return found


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> int:
    """Threads other than the event loop's reusable executor pool (asyncio_N)."""
    return sum(not t.name.startswith("asyncio_") for t in threading.enumerate())


def _tasks() -> int:
    return sum(not t.done() for t in asyncio.all_tasks())


async def _until(cond, timeout: float, what: str) -> None:
    async def loop():
        while not cond():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"{what} within {timeout} s") from None


async def test_calls_in_a_row_leave_no_live_objects_tasks_threads_or_fds(make_node):
    cam, viewer = make_node("cam"), make_node("viewer")
    cam.trust(viewer, "view", address=VIEWER)
    viewer.trust(cam, "view", address=CAM)
    # keyframe_interval small: each call waits for its own IDR, not the previous call's.
    publisher = MediaPublisher(
        TestPatternSource(160, 120, fps=30, gop=30, seconds=1.0),
        ToneSource(),
        MediaPolicy(keyframe_interval=0.05),
    )
    await publisher.start()
    cam_replay, viewer_replay = ReplayCache(cam.home.replay_db), ReplayCache(viewer.home.replay_db)
    cam_m = CallManager(
        cam.identity,
        Config(),
        cam.peers,
        StaticProvider(address=CAM),
        publisher,
        LinkOpener(cam.identity, cam.peers, cam_replay, skew=30),
    )
    view_m = CallManager(
        viewer.identity,
        Config(),
        viewer.peers,
        StaticProvider(address=VIEWER),
        None,
        LinkOpener(viewer.identity, viewer.peers, viewer_replay, skew=30),
    )
    events: list[dict] = []
    cam_m.on_event(events.append)
    peer = viewer.peers.find("cam")

    async def one_call() -> None:
        call = await view_m.view(peer, Direct(cam_m))
        await call.receiver.wait_video_frames(1, 20)
        await call.end("soak")
        await _until(lambda: not cam_m.active(), 15, "the camera ends its side after the viewer hangs up")

    try:
        for _ in range(WARM_UP):  # lazy imports, codec tables, executor threads, caches
            await one_call()
        await asyncio.sleep(0.2)
        before = (_live(), _tasks(), _threads(), _fds())
        for _ in range(CALLS):
            await one_call()
        await asyncio.sleep(0.2)  # the last call's close callbacks
        after = (_live(), _tasks(), _threads(), _fds())
        ended = [e for e in events if e["event"] == "call-ended"]
        assert len(ended) == WARM_UP + CALLS
        live_before, live_after = before[0], after[0]
        grown = {name: (live_before[name], n) for name, n in live_after.items() if n > live_before[name]}
        assert not grown, f"per-call objects still alive after {CALLS} calls (before, after): {grown}"
        assert after[1:] == before[1:], f"(tasks, threads, fds) before {before[1:]}, after {after[1:]}"
        # the publisher's per-viewer state is gone too
        assert publisher.fanout.viewers == [] and not publisher._attachments
        assert not publisher.bitrate._estimates
        assert not cam_m._setups and not cam_m.events.pending and not cam_m._pending
    finally:
        await asyncio.gather(view_m.close(), cam_m.close())
        await publisher.stop()
        cam_replay.close()
        viewer_replay.close()
