"""The call path through the CLI, as a person runs it: `media-node run` (the daemon) and
`media-node view --via file:` in separate processes, loopback as the overlay; and
`media-node demo --json`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from node.config import Config, render_default_config

CLI = [sys.executable, "-m", "node.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _configure(node, address: str, media: bool, **calls) -> None:
    config = Config()
    config.node.name = node.name
    config.overlay.address = address
    config.overlay.cidr = "127.0.0.0/8"
    if media:
        config.media.video, config.media.audio = "testsrc", "tone"
    for k, v in calls.items():
        setattr(config.calls, k, v)
    node.home.config_file.write_text(render_default_config(config))


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            pytest.fail(f"process exited {proc.returncode}:\n{path.read_text() if path.exists() else ''}")
        time.sleep(0.1)
    pytest.fail(f"{text!r} not seen in {path} within {timeout} s:\n{path.read_text()}")


def _start_daemon(procs, home: Path, log: Path, env: dict | None = None) -> subprocess.Popen:
    p = subprocess.Popen(
        [*CLI, "run", "--home", str(home)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),
        env=env,
    )
    procs.append(p)
    _wait_for(log, "file drop: watching", p, 60)
    return p


def _view(home: Path, camera_home: Path, *extra: str, seconds: int = 3, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *CLI,
            "view",
            "camera",
            "--home",
            str(home),
            "--via",
            f"file:{camera_home}",
            "--seconds",
            str(seconds),
            "--json",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.fixture
def nodes(make_node):
    camera, viewer = make_node("camera"), make_node("viewer")
    camera.trust(viewer, "view", address="127.0.0.2")
    viewer.trust(camera, "view", address="127.0.0.1")
    _configure(viewer, "127.0.0.2", media=False)
    return camera, viewer


def test_view_call_between_two_processes(nodes, procs, tmp_path):
    camera, viewer = nodes
    _configure(camera, "127.0.0.1", media=True)
    log = tmp_path / "daemon.log"
    notify_path = Path(tempfile.mkdtemp(prefix="mnn")) / "notify"  # sun_path is short
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(30)
    daemon = _start_daemon(procs, camera.home.path, log, env=dict(os.environ, NOTIFY_SOCKET=str(notify_path)))
    try:
        assert "READY=1" in notify.recv(4096).decode().splitlines()
    finally:
        notify.close()
        shutil.rmtree(notify_path.parent)
    record = tmp_path / "rec.mkv"
    v = _view(viewer.home.path, camera.home.path, "--record", str(record), seconds=3)
    procs.append(v)
    out, err = v.communicate(timeout=120)
    assert v.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["video_frames"] > 0 and summary["audio_frames"] > 0, summary
    assert summary["ttff_ms"] > 0 and summary["kbps"] > 0
    assert (summary["local_address"], summary["remote_address"]) == ("127.0.0.2", "127.0.0.1")
    assert summary["record"] == str(record) and record.stat().st_size > 0
    # the handshake went through the camera's drop folders, signed both ways
    assert len(os.listdir(camera.home.done)) == 1 and os.listdir(camera.home.rejected) == []
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    text = log.read_text()
    assert "ended (" in text and "stopped in" in text, text
    assert "Traceback" not in text, text


def test_busy_reply_and_sigterm_ends_calls(nodes, procs, tmp_path, make_node):
    camera, viewer = nodes
    _configure(camera, "127.0.0.1", media=True, max_calls=1)
    second = make_node("second")
    camera.trust(second, "view", address="127.0.0.3")
    second.trust(camera, "view", address="127.0.0.1")
    _configure(second, "127.0.0.3", media=False)
    log = tmp_path / "daemon.log"
    daemon = _start_daemon(procs, camera.home.path, log)
    long_view = _view(viewer.home.path, camera.home.path, seconds=60)
    procs.append(long_view)
    _wait_for(log, "started", daemon, 60)
    busy = _view(second.home.path, camera.home.path, seconds=3)
    procs.append(busy)
    out, err = busy.communicate(timeout=60)
    assert busy.returncode == 5 and "busy" in err and "maximum of 1" in err, (busy.returncode, err)
    # SIGTERM while a call runs: the daemon ends it and exits; the viewer sees the end.
    time.sleep(1)  # let some media flow first (not a timing assertion)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    assert "ended 1 call(s)" in log.read_text()
    out, err = long_view.communicate(timeout=30)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["video_frames"] > 0 and summary["ended"] != "duration", summary


def test_demo_prints_valid_json(tmp_path):
    out = subprocess.run(
        [*CLI, "demo", "--seconds", "2", "--json", "--dir", str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    for key in (
        "ttff_ms",
        "video_frames",
        "audio_frames",
        "kbps",
        "local_address",
        "remote_address",
        "record",
    ):
        assert key in summary
    assert summary["video_frames"] > 0 and summary["audio_frames"] > 0
    assert Path(summary["record"]).stat().st_size > 0
    assert "test pattern" in summary["source"] and "software" in summary["source"]


def test_view_via_manual_links_carried_by_hand(nodes, procs, tmp_path):
    """--via manual: the request is printed, a person carries it (here: into the camera's
    inbox) and pastes the reply on stdin."""
    camera, viewer = nodes
    _configure(camera, "127.0.0.1", media=True)
    log = tmp_path / "daemon.log"
    _start_daemon(procs, camera.home.path, log)
    v = subprocess.Popen(
        [
            *CLI,
            "view",
            "camera",
            "--home",
            str(viewer.home.path),
            "--via",
            "manual",
            "--seconds",
            "2",
            "--json",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(v)
    request = v.stdout.readline().strip()
    assert request.startswith("mnode:"), request
    (camera.home.inbox / ".hand.tmp").write_text(request + "\n")
    os.rename(camera.home.inbox / ".hand.tmp", camera.home.inbox / "hand.link")
    reply_path = camera.home.outbox / "hand.link"
    deadline = time.monotonic() + 30
    while not reply_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    v.stdin.write(reply_path.read_text())
    v.stdin.flush()
    out, err = v.communicate(timeout=60)
    assert v.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["video_frames"] > 0 and summary["via"] == "manual"


def test_demo_with_a_file_source_and_no_audio(tmp_path):
    """--video/--audio choose the camera's sources; a bad one is refused before anything starts."""
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=320x240:rate=25",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-g",
            "25",
            str(clip),
        ],
        check=True,
        timeout=60,
    )
    out = subprocess.run(
        [
            *CLI,
            "demo",
            "--seconds",
            "2",
            "--json",
            "--dir",
            str(tmp_path / "demo"),
            "--video",
            f"file:{clip}",
            "--audio",
            "none",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["video_frames"] > 0 and summary["audio_frames"] == 0
    assert "clip.mp4" in summary["source"] and "passed through" in summary["source"]
    bad = subprocess.run(
        [*CLI, "demo", "--video", "webcam"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "not understood" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run(
        [*CLI, "run", "--home", str(tmp_path / "none"), "--audio", "mic"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "not understood" in bad.stderr
