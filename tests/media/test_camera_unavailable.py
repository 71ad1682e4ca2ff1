"""A camera that is absent is an error state, never a test pattern and never an exit.

`media-node run` (a real daemon process) with the board profile's camera absent
(`media.video` empty) and with an explicit `video = "v4l2:/dev/video9"` that does not
exist: the daemon stays up, READY carries "camera unavailable", its retained MQTT status
(a real mosquitto) says `source: unavailable`, a `media-node view` gets the signed
`unavailable` error, and no video frame is ever sent. In process: the source retries
with backoff and is served as soon as it starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from node.config import Config, render_default_config
from node.home import Home
from node.identity import Identity
from node.media.availability import GuardedSource
from node.media.source import Backoff, EncodedVideoSource, MediaError
from node.peers import PeerStore, make_peer
from tests.transports.broker import Broker

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "node.cli"]


class Node:
    def __init__(self, path: Path, name: str, address: str):
        self.home = Home(path)
        self.name = name
        self.address = address
        path.mkdir(parents=True, mode=0o700)
        self.home.create(name)
        self.node_id = Identity.load(self.home.key_file).node_id

    def configure(self, broker: Broker | None = None, **media) -> None:
        config = Config()
        config.node.name = self.name
        config.overlay.provider, config.overlay.address = "static", self.address
        config.overlay.cidr = "127.0.0.0/8"
        for key, value in media.items():
            setattr(config.media, key, value)
        if broker is not None:
            config.mqtt = broker.config_for(self.node_id)
        self.home.config_file.write_text(render_default_config(config))

    def trust(self, other: Node) -> None:
        PeerStore(self.home.peers_file).add(
            make_peer(other.name, other.node_id, "view", address=other.address), replace=True
        )


def profile_camera_absent() -> dict:
    """A board profile whose own camera this machine does not have."""
    if not os.path.exists("/dev/video0"):
        return {"profile": "generic-uvc", "video": ""}  # its camera is /dev/video0
    return {"profile": "pi4", "video": ""}  # picamera2 does not import here


CASES = {
    "profile-camera-absent": profile_camera_absent,
    "explicit-v4l2-absent": lambda: {"video": "v4l2:/dev/video9"},
}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unavailable")
    camera = Node(tmp / "camera", "camera", "127.0.0.1")
    viewer = Node(tmp / "viewer", "viewer", "127.0.0.2")
    camera.trust(viewer)
    viewer.trust(camera)
    viewer.configure()
    broker = Broker(tmp / "broker", nodes=[camera], controllers=["controller"])
    broker.start()
    yield camera, viewer, broker
    broker.stop()


def retained_status(broker: Broker, node_id: str, want: str, timeout: float = 30.0) -> dict:
    """The node's retained status once it has `source: want` (a controller's view)."""
    seen: list[dict] = []
    got = threading.Event()

    def on_message(client, userdata, message):
        status = json.loads(message.payload)
        seen.append(status)
        if status.get("source") == want:
            got.set()

    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"t-{time.monotonic_ns()}")
    c.username_pw_set("controller", broker.password_files["controller"].read_text().strip())
    c.tls_set(ca_certs=str(broker.ca_file))
    c.on_message = on_message
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(f"{broker.prefix}/{node_id}/status", qos=1)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        assert got.wait(timeout), f"no status with source={want!r}: {seen}"
    finally:
        c.loop_stop()
        c.disconnect()
    return next(s for s in seen if s.get("source") == want)


@pytest.mark.parametrize("case", list(CASES))
def test_run_with_an_absent_camera_stays_up_and_refuses_views(case, rig, tmp_path):
    camera, viewer, broker = rig
    camera.configure(broker, audio="none", **CASES[case]())
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(60)
    log = tmp_path / "daemon.log"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["NOTIFY_SOCKET"] = str(notify)
    with open(log, "w") as err:
        daemon = subprocess.Popen(
            [*CLI, "run", "--home", str(camera.home.path)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    try:
        ready = ""
        while "READY=1" not in ready:
            try:
                ready = sock.recv(4096).decode()
            except TimeoutError:
                pytest.fail(f"no READY=1 within 60 s:\n{log.read_text()}")
        assert "camera unavailable" in ready, ready
        status = retained_status(broker, camera.node_id, "unavailable")
        assert status["state"] == "online" and status["source"] == "unavailable"

        view = subprocess.run(
            [
                *CLI,
                "view",
                "camera",
                "--home",
                str(viewer.home.path),
                "--via",
                f"file:{camera.home.path}",
                "--seconds",
                "3",
                "--json",
            ],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert view.returncode != 0
        assert "unavailable" in view.stderr and "camera is not available" in view.stderr, view.stderr
        assert "Traceback" not in view.stderr
        time.sleep(1.5)  # a retry or two of the source has happened meanwhile
        assert daemon.poll() is None, f"the daemon exited:\n{log.read_text()}"
        text = log.read_text()
        assert "is unavailable" in text and "retrying with backoff" in text, text
        assert "testsrc" not in text and "test pattern" not in text, text
        assert "call " not in text  # no call started, so not one frame went out
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        sock.close()
    assert daemon.returncode == 0, log.read_text()


class FlakyCamera(EncodedVideoSource):
    """Fails to start `failures` times, then delivers one access unit per start."""

    kind = "flaky"

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures
        self.attempts = 0

    def _start(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise MediaError(f"flaky: no camera yet (attempt {self.attempts})")
        self._emit(b"\x00\x00\x00\x01\x65\x88", 0)

    def _stop(self) -> None:
        pass


def test_the_source_retries_with_backoff_until_it_starts():
    inner = FlakyCamera(failures=3)
    got = []
    source = GuardedSource(inner, backoff=Backoff(0.01, 0.05))
    source.start(got.append)
    try:
        assert source.state() == "unavailable" and "attempt 1" in source.unavailable_reason()
        deadline = time.monotonic() + 10
        while source.state() != "available" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.state() == "available" and inner.attempts == 4
        assert len(got) == 1 and not source.retrying()
    finally:
        source.stop()
    assert source.state() == "unavailable"
