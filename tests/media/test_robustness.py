"""Bad input and crashes in the media path: camera credentials never reach the logs, a
malformed SPS (from a camera or a peer) is skipped instead of killing a source or a
recording, source threads restart after a failure, the publisher reports a dead source
to the service watchdog, and RTSP URLs must name the camera by IP (no DNS)."""

from __future__ import annotations

import asyncio
import fractions
import logging
import socket
import threading
import time

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from node.errors import NodeError
from node.media import MediaPublisher
from node.media.annexb import find_sps, split_nals
from node.media.filesource import FileSource, read_access_units
from node.media.publisher import MediaPolicy
from node.media.select import parse_video
from node.media.source import (
    AccessUnit,
    Backoff,
    EncodedVideoSource,
    MediaError,
    VideoInfo,
    WorkerThread,
)

from .conftest import Collector

# An SPS NAL cut after its header byte: parse_sps raises ValueError on it.
TRUNCATED_SPS = b"\x00\x00\x00\x01\x67"


def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def with_truncated_sps(idr: bytes) -> bytes:
    """The IDR access unit with its SPS replaced by a truncated one."""
    nals = [n for n in split_nals(idr) if n[0] & 0x1F != 7]
    return TRUNCATED_SPS + b"".join(b"\x00\x00\x00\x01" + n for n in nals)


@pytest.fixture(scope="module")
def clip(clip_dir) -> list[bytes]:
    raw, _ = read_access_units(clip_dir / "clip.h264")
    return raw


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends


# --- 1: credentials ---------------------------------------------------------------


def test_rtsp_errors_never_show_the_camera_password(caplog):
    """FFmpeg's own error text quotes the URL it opened, password included."""
    from node.media.rtsp import RtspSource

    caplog.set_level(logging.DEBUG)
    source = RtspSource(
        f"rtsp://admin:hunter2@127.0.0.1:{closed_port()}/stream", open_timeout=2, read_timeout=2
    )
    source.start(lambda au: None)
    try:
        wait_for(lambda: source.last_error, what="a connection error")
    finally:
        source.stop()
    assert "127.0.0.1" in source.last_error and "hunter2" not in source.last_error
    assert "rtsp:" in caplog.text and "hunter2" not in caplog.text
    assert "admin" not in caplog.text


def test_redaction_handles_passwords_with_at_signs():
    from node.media.rtsp import RtspSource, redact_urls

    source = RtspSource("rtsp://u:p@ss@10.0.0.9:554/s")
    shown = source.redact("Connection refused: 'rtsp://u:p@ss@10.0.0.9:554/s' (u:p@ss)")
    assert "p@ss" not in shown and "10.0.0.9:554" in shown
    assert redact_urls("open rtsps://me:secret@192.0.2.1/x failed") == "open rtsps://***@192.0.2.1/x failed"


# --- 2: a malformed SPS does not kill the RTSP source ---------------------------------


def test_truncated_sps_is_not_an_error(clip):
    bad = with_truncated_sps(clip[0])
    assert find_sps(bad) is None
    info = VideoInfo(kind="x", label="passthrough")
    info.update_from(AccessUnit(bad, 0, True))  # must not raise
    info.update_from(AccessUnit(clip[0], 1, True))
    assert info.width == 320


class FakeCamera:
    """Stands in for av.open(rtsp://...): real packets of the clip, with the SPS of
    the second IDR truncated; `fail` makes the first session raise mid-stream."""

    def __init__(self, aus: list[bytes], fail: Exception | None = None):
        self.aus, self.fail, self.opens = aus, fail, 0

    def __call__(self, *args, **kwargs):
        self.opens += 1
        camera, first = self, self.opens == 1

        class Stream:
            codec_context = type("C", (), {"name": "h264", "extradata": b""})()
            average_rate, guessed_rate = fractions.Fraction(30), None
            time_base = fractions.Fraction(1, 90000)

        class Container:
            streams = type("S", (), {"video": [Stream()]})()

            def demux(self, stream):
                for i, au in enumerate(camera.aus):
                    if first and camera.fail is not None and i == 20:
                        raise camera.fail
                    packet = av.Packet(au)
                    packet.pts = i * 3000
                    time.sleep(0.002)
                    yield packet

            def close(self):
                pass

        return Container()


def test_rtsp_source_survives_a_truncated_sps_and_unexpected_errors(clip, monkeypatch):
    from node.media import rtsp

    idrs = [i for i, au in enumerate(clip) if au[4] & 0x1F == 7]
    aus = list(clip)
    aus[idrs[1]] = with_truncated_sps(aus[idrs[1]])
    camera = FakeCamera(aus, fail=RuntimeError("a bug in the demuxer"))
    monkeypatch.setattr(rtsp.av, "open", camera)
    source = rtsp.RtspSource("rtsp://127.0.0.1/x", max_backoff=0.1)
    sink = Collector()
    source.start(sink)
    try:
        # session 1 dies at packet 20 (RuntimeError), session 2 plays past the bad SPS
        sink.wait(20 + idrs[1] + 10, timeout=30)
        assert camera.opens >= 2 and "RuntimeError" in source.last_error
        assert source.alive()
    finally:
        source.stop()
    assert source.info().width == 320  # the good SPS was still read


def test_worker_thread_restarts_a_crashed_run_with_backoff():
    runs = []

    def run(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise ValueError("bad input")
        stop.wait(30)

    worker = WorkerThread("test-worker", run, restart=Backoff(0.01, 0.05))
    worker.start()
    try:
        wait_for(lambda: len(runs) == 3, what="two restarts")
        assert worker.alive() and worker.failures == 2
        assert isinstance(worker.error, ValueError)
    finally:
        worker.stop()
    # without a restart policy a crash ends the thread, and that is visible
    worker = WorkerThread("test-worker", lambda stop: 1 / 0)
    worker.start()
    wait_for(lambda: not worker.alive(), what="the thread to end")
    assert isinstance(worker.error, ZeroDivisionError)


def test_worker_thread_logs_an_explained_failure_in_one_line_and_a_repeat_without_trace(caplog):
    """A NodeError (no GPIO chip, no camera) says what is wrong in one line at every
    restart; an unexpected error shows its traceback once, not at every restart."""
    errors = [NodeError("no /dev/gpiochip* on this machine")] * 3 + [ValueError("bad input")] * 3
    runs = []

    def run(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) <= len(errors):
            raise errors[len(runs) - 1]
        stop.wait(30)

    caplog.set_level(logging.ERROR, logger="node.media.source")
    worker = WorkerThread("test-worker", run, restart=Backoff(0.01, 0.02))
    worker.start()
    try:
        wait_for(lambda: len(runs) > len(errors), what="six restarts")
    finally:
        worker.stop()
    records = [r for r in caplog.records if "test-worker" in r.getMessage()]
    assert len(records) == 6
    assert all("no /dev/gpiochip* on this machine" in r.getMessage() for r in records[:3])
    traced = [bool(r.exc_info) for r in records]
    assert traced == [False, False, False, True, False, False]


class DyingSource(EncodedVideoSource):
    """A self-healing source whose thread ends after `frames` AUs (like the RTSP
    thread before the fix): nothing outside restarts it."""

    kind = "dying"
    self_healing = True

    def __init__(self, aus: list[bytes], frames: int):
        super().__init__()
        self._aus, self._frames = aus, frames
        self._worker: WorkerThread | None = None

    def _run(self, stop: threading.Event) -> None:
        for i, au in enumerate(self._aus[: self._frames]):
            self._emit(au, i * 33_333)
        raise ValueError("malformed input")

    def _start(self) -> None:
        self._worker = WorkerThread("dying-source", self._run)
        self._worker.start()

    def _stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None


async def test_publisher_reports_a_dead_source_thread(clip):
    source = DyingSource(clip, 5)
    publisher = MediaPublisher(source, None)
    await publisher.start()
    try:
        for _ in range(500):
            if not source.alive():
                break
            await asyncio.sleep(0.01)
        assert not source.alive()
        assert publisher.fanout.stall_timeout is None  # the fan-out does not watch it
        assert not publisher.healthy()
        assert "thread died" in publisher.unhealthy_reason
    finally:
        await publisher.stop()


async def test_publisher_reports_no_video_for_too_long(clip_dir):
    publisher = MediaPublisher(FileSource(str(clip_dir / "clip.ts")), None, MediaPolicy(dead_after=0.3))
    await publisher.start()
    try:
        await asyncio.wait_for(publisher.fanout.first_au_event.wait(), 20)
        assert publisher.healthy()
        publisher.video.stop()  # a source wedged: no AU any more, and no restart yet
        for _ in range(300):
            if not publisher.healthy():
                break
            await asyncio.sleep(0.02)
        assert "no video" in publisher.unhealthy_reason
    finally:
        await publisher.stop()


def test_service_is_unhealthy_when_the_publisher_is(tmp_path):
    from node.home import Home
    from node.service import Service

    class Publisher:
        ok = True

        def healthy(self) -> bool:
            return self.ok

    publisher = Publisher()
    service = Service(Home(tmp_path), publisher=publisher)
    service.manager = object()  # started
    assert service.healthy()
    publisher.ok = False
    assert not service.healthy()


# --- 3: the recorder skips bad AUs from a peer ------------------------------------------


def test_recorder_skips_an_idr_with_a_truncated_sps(clip, tmp_path):
    from node.media.receiver import Recorder, read_recorded_access_units

    recorder = Recorder(tmp_path / "r.mkv")
    recorder.write(with_truncated_sps(clip[0]), 0)  # used to raise ValueError
    for i, au in enumerate(clip[15:45]):  # clip[15] is the next IDR
        recorder.write(au, 3000 * (i + 1))
    recorder.write(with_truncated_sps(clip[45]), 3000 * 40)  # mid-recording: kept as is
    recorder.close()
    assert recorder.skipped == 1 and recorder.frames == 31
    assert read_recorded_access_units(tmp_path / "r.mkv")[:30] == clip[15:45]


async def test_receiver_keeps_recording_after_a_bad_access_unit(clip, tmp_path):
    """The consume task must not end when the recorder rejects one AU."""
    from node.media.receiver import MediaReceiver, read_recorded_access_units

    from .conftest import loopback_pc

    class Track:
        def __init__(self, aus):
            self.aus = list(aus)
            self.n = 0

        async def recv(self):
            if not self.aus:
                raise MediaStreamError
            packet = av.Packet(self.aus.pop(0))
            packet.pts = 3000 * self.n
            self.n += 1
            return packet

    pc = loopback_pc()
    receiver = MediaReceiver(pc, record_path=tmp_path / "v.mkv")
    real_write = receiver.recorder.write

    def write(data: bytes, pts: int, keyframe: bool | None = None) -> None:
        if data == clip[5]:
            raise ValueError("a malformed access unit")  # any parse error of the peer's data
        real_write(data, pts, keyframe)

    receiver.recorder.write = write
    try:
        await asyncio.wait_for(receiver._consume_video(Track(clip[:30]), None), 20)
        assert receiver.bad_access_units == 1 and receiver.recorder is not None
        assert receiver.recorder.frames == 29
    finally:
        await receiver.close()
        await pc.close()
    assert len(read_recorded_access_units(tmp_path / "v.mkv")) == 29


# --- 4: no DNS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://u:p@192.0.2.10:554/s",
        "rtsps://192.0.2.10/s",
        "rtsp://[fd00::10]:8554/s",
        "rtsp://[201:1::2]/live",
    ],
)
def test_rtsp_urls_with_ip_addresses_are_accepted(url):
    assert parse_video(url).target == url


@pytest.mark.parametrize(
    "url, message",
    [
        ("rtsp://admin:pw@frontdoor-cam.lan:554/stream1", "makes no DNS lookups: give the camera's IP"),
        ("rtsps://camera/s", "makes no DNS lookups"),
        ("rtsp://192.0.2.10:99999/s", "not a valid URL"),
        ("rtsp://192.0.2.10:port/s", "not a valid URL"),
        ("rtsp:///s", "no camera address"),
    ],
)
def test_rtsp_urls_naming_hosts_or_bad_ports_are_refused(url, message, monkeypatch):
    asked = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: asked.append(a) or [])
    with pytest.raises(MediaError, match=message) as e:
        parse_video(url)
    assert "pw@" not in str(e.value) and not asked


def test_doctor_checks_the_camera_without_resolving_names(monkeypatch, tmp_path):
    from node.config import Config
    from node.doctor import Doctor
    from node.home import Home

    asked = []

    def no_dns(host, *a, **k):
        asked.append(host)
        raise socket.gaierror(-2, "the test forbids name lookups")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    doctor = Doctor(Home(tmp_path), Config(), machine=None, timeout=2)
    named = doctor._reach("camera", "rtsp://a:pw@frontdoor-cam.lan:554/s", 554, "fix")
    assert named.status == "missing" and "DNS" in named.detail and "IP" in named.fix
    port = closed_port()
    refused = doctor._reach("camera", f"rtsp://a:pw@127.0.0.1:{port}/s", 554, "fix")
    assert refused.status == "missing" and f"127.0.0.1:{port}" in refused.detail
    bad_port = doctor._reach("camera", "rtsp://127.0.0.1:99999/s", 554, "fix")
    assert bad_port.status == "missing" and "port" in bad_port.detail
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        ok = doctor._reach("camera", f"rtsp://127.0.0.1:{server.getsockname()[1]}/s", 554, "fix")
    assert ok.status == "ok"
    assert asked == []


# --- 5: ALSA read errors restart capture ---------------------------------------------


def test_alsa_read_error_reopens_the_device(monkeypatch):
    """A read error (a USB microphone unplugged and back) used to end the thread."""
    import alsaaudio

    from node.media.audio import AlsaSource

    class FlakyPcm:
        opened = 0

        def __init__(self, **kwargs):
            FlakyPcm.opened += 1
            self.reads = 0

        def info(self):
            return {"rate": 48000, "channels": 1}

        def read(self):
            self.reads += 1
            if FlakyPcm.opened == 1 and self.reads == 3:
                raise alsaaudio.ALSAAudioError("Input/output error [-5]")
            time.sleep(0.005)
            return 960, bytes(1920)

        def close(self):
            pass

    monkeypatch.setattr(alsaaudio, "PCM", FlakyPcm)
    source = AlsaSource("test", 48000, 1)
    got = Collector()
    source.start(lambda data, pts: got((data, pts)))
    try:
        got.wait(10, timeout=20)
        assert FlakyPcm.opened == 2 and source.alive()
        assert isinstance(source._worker.error, MediaError)
    finally:
        source.stop()


def test_v4l2_restart_forgets_the_previous_software_encoder(clip_dir, clip, monkeypatch):
    """Started once on raw frames (libx264), then restarted when the camera offers
    H.264: the second start must pass the camera's bytes through, not re-encode."""
    from node.media.v4l2 import V4l2Source

    source = V4l2Source("/dev/video-test", 320, 240, 30, 300_000, 30)
    offers_h264 = [False]

    def fake_open(input_format):
        if input_format == "h264" and not offers_h264[0]:
            raise av.error.InvalidDataError(1094995529, "Invalid data found")
        return av.open(str(clip_dir / "clip.h264"), format="h264")

    monkeypatch.setattr(source, "_open", fake_open)
    first = Collector()
    source.start(first)
    try:
        first.wait(3, timeout=30)
        assert source._encoder is not None and source.info().label != "passthrough"
    finally:
        source.stop()
    offers_h264[0] = True
    second = Collector()
    source.start(second)
    try:
        aus = second.wait(5, timeout=30)
    finally:
        source.stop()
    assert source.info().label == "passthrough"
    assert [au.data for au in aus[:5]] == clip[:5]
