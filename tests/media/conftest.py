"""Fixtures for the media tests: real H.264 clips (encoded once per session by libx264,
stored as raw Annex-B, MP4 and MPEG-TS), and loopback peer connections built with the
node's own overlay ICE policy restricted to 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from node import internals
from node.media import MediaReceiver
from node.media.hooks import prefer_h264
from node.media.testsrc import encode_pattern

FPS = 30


@pytest.fixture(autouse=True)
def _fresh_internals_check():
    """check_internals() keeps its answer for the process; a test that changes aiortc or
    pylibsrtp (monkeypatch) sees it checked anew, and the next test the real answer."""
    internals.media_problems.cache_clear()
    yield
    internals.media_problems.cache_clear()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """clip.h264 (raw Annex-B), clip.mp4 (avcC) and clip.ts, 4 s of 320x240 @30, GOP 15."""
    d = tmp_path_factory.mktemp("clips")
    aus = encode_pattern(320, 240, FPS, seconds=4.0, gop=15, bitrate=400_000)
    (d / "clip.h264").write_bytes(b"".join(aus))
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is needed for the MP4/TS fixtures (apt-get install ffmpeg)"
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-y",
            "-r",
            str(FPS),
            "-i",
            str(d / "clip.h264"),
            "-c",
            "copy",
            str(d / "clip.mp4"),
        ],
        check=True,
        timeout=60,
    )
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-i", str(d / "clip.mp4"), "-c", "copy", str(d / "clip.ts")],
        check=True,
        timeout=60,
    )
    return d


def loopback_pc():
    from node.ice import IcePolicy, OverlayPeerConnection

    return OverlayPeerConnection(IcePolicy.make(["127.0.0.1"], ["127.0.0.1"], label="test"))


class Session:
    """A viewer pc (recvonly offer, MediaReceiver) and a publisher pc (answers)."""

    def __init__(self):
        self.viewer = loopback_pc()
        self.publisher_pc = loopback_pc()
        self.receiver: MediaReceiver | None = None
        self.attachment = None

    async def connect(self, publisher, record_path=None, decode=False, timeout=20.0):
        self.viewer.addTransceiver("audio", direction="recvonly")
        prefer_h264(self.viewer.addTransceiver("video", direction="recvonly"))
        self.receiver = MediaReceiver(
            self.viewer, record_path=record_path, decode=decode, keep_access_units=True
        )
        await self.viewer.setLocalDescription(await self.viewer.createOffer())
        await self.publisher_pc.setRemoteDescription(self.viewer.localDescription)
        self.attachment = publisher.attach(self.publisher_pc)
        await self.publisher_pc.setLocalDescription(await self.publisher_pc.createAnswer())
        await self.viewer.setRemoteDescription(self.publisher_pc.localDescription)
        return self

    async def close(self):
        if self.attachment is not None:
            self.attachment.detach()
        await self.publisher_pc.close()
        await self.viewer.close()
        if self.receiver is not None:
            await self.receiver.close()


@pytest.fixture
async def sessions():
    made: list[Session] = []

    def factory() -> Session:
        s = Session()
        made.append(s)
        return s

    yield factory
    for s in made:
        await asyncio.wait_for(s.close(), 20)


FAKES = Path(__file__).parent / "fakes"


@pytest.fixture
def fake_picamera2(monkeypatch, clip_dir):
    """The fake picamera2 package on sys.path, playing clip.h264; removed afterwards."""
    import sys

    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
        monkeypatch.delitem(sys.modules, name)
    import picamera2
    import picamera2.platform

    monkeypatch.setattr(picamera2.Picamera2, "clip", clip_dir / "clip.h264")
    monkeypatch.setattr(picamera2.Picamera2, "instances", [])
    yield picamera2
    for name in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
        sys.modules.pop(name, None)


class Collector:
    """A source sink that keeps access units and lets a test wait for a count."""

    def __init__(self):
        import threading

        self.aus = []
        self._cond = threading.Condition()

    def __call__(self, au):
        with self._cond:
            self.aus.append(au)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = 20.0):
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.aus) >= count, timeout), (
                f"only {len(self.aus)} of {count} access units within {timeout} s"
            )
        return list(self.aus)


@pytest.fixture
def rtsp_server(clip_dir, tmp_path):
    """gst-rtsp-server on 127.0.0.1 serving clip.mp4 with SPS/PPS stripped from the
    stream (only in the SDP, like many IP cameras). Yields the URL."""
    import os
    import socket

    if not Path("/usr/bin/python3").exists():
        pytest.fail("the RTSP test server needs /usr/bin/python3 with python3-gi")
    stripped = tmp_path / "noparams.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(clip_dir / "clip.mp4"),
            "-c",
            "copy",
            "-bsf:v",
            "filter_units=remove_types=7|8",
            str(stripped),
        ],
        check=True,
        timeout=60,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["/usr/bin/python3", str(Path(__file__).parent / "rtsp_server.py"), str(stripped), str(port), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
    )
    try:
        import select

        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else "(no output within 20 s)"
        if line.strip() != "READY":
            proc.kill()
            pytest.fail(f"RTSP test server did not start: {line!r} {proc.stderr.read()[:2000]}")
        yield f"rtsp://127.0.0.1:{port}/cam"
    finally:
        proc.kill()
        proc.wait(10)
