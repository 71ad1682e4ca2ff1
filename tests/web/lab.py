"""A camera and a user's computer in two network namespaces, as a user has them:

  lan0  192.168.66.1/24 <-> 192.168.66.2/24   the LAN (a private range: Firefox ignores
                                               169.254/16); each side's default route points
                                               across it (a browser sees a real LAN)
  ovl0  10.97.0.1/24    <-> 10.97.0.2/24      the overlay (media-node's `static` provider
                                               on interface ovl0); the camera is reached
                                               only over it

The camera runs `media-node run` (a looping H.264 clip, a tone, a speaker that is an
ALSA `file` device); the user's namespace runs `media-node web` and the browsers. The
browsers get no overlay, no key and no flag: they talk to 127.0.0.1 only. A mosquitto
(the mqtt_broker role's config and ACL) listens on the camera's overlay address: the
doorbell's `cmd/call`, and the status the page shows online/offline."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import msgspec
import tomli_w
from privacy.callrig import media_node, wait_ready
from privacy.netlab import Netns, _pid_alive, sh
from transports.broker import Broker

from node.home import Home
from node.identity import Identity
from node.peers import PeerStore, make_peer

PREFIX = "mnweb"
LAN = {"cam": "192.168.66.1", "user": "192.168.66.2"}
OVERLAY = {"cam": "10.97.0.1", "user": "10.97.0.2"}
OVERLAY_CIDR = "10.97.0.0/24"


def sweep_stale() -> None:
    listing = sh("ip", "netns", "list", check=False).stdout
    for name, pid in re.findall(rf"^({PREFIX}-(\d+)-[0-9a-f]+-\w+)\b", listing, re.M):
        if not _pid_alive(int(pid)):
            Netns(name, create=False).destroy()


class _Named:
    def __init__(self, name: str, node_id: str):
        self.name, self.node_id = name, node_id


def _home(path: Path, name: str, **media: str) -> Home:
    home = Home(path)
    home.create(name)
    config = tomllib.loads(home.config_file.read_text())
    config["overlay"].update(provider="static", interface="ovl0", cidr=OVERLAY_CIDR)
    config["media"].update(media)
    home.config_file.write_text(tomli_w.dumps(config))
    return home


class WebLab:
    def __init__(self, workdir: Path, video: str):
        sweep_stale()
        self.workdir = workdir
        self.tag = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        self.ns: dict[str, Netns] = {}
        self.procs: list[subprocess.Popen] = []
        # the camera's speaker: ALSA's `file` plugin writing speaker.raw (s16le mono 48 kHz)
        self.speaker = workdir / "speaker.raw"
        conf = workdir / "speaker.conf"
        conf.write_text(
            'pcm.media_node_test_speaker {\n    type file\n    slave.pcm "null"\n'
            f'    file "{self.speaker}"\n    format "raw"\n}}\n'
        )
        self.env = dict(os.environ, ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{conf}")
        self.camera = _home(
            workdir / "camera", "camera", video=video, audio="tone", speaker="alsa:media_node_test_speaker"
        )
        self.viewer = _home(workdir / "viewer", "viewer")
        self.cam_id = cam_id = Identity.load(self.camera.key_file).node_id
        self.viewer_id = viewer_id = Identity.load(self.viewer.key_file).node_id
        PeerStore(self.camera.peers_file).add(
            make_peer("viewer", viewer_id, "view,talk,call", address=OVERLAY["user"])
        )
        PeerStore(self.viewer.peers_file).add(
            make_peer("camera", cam_id, "view,call", address=OVERLAY["cam"], via=f"file:{self.camera.path}")
        )
        self.url = ""

    def setup(self) -> WebLab:
        for side in ("cam", "user"):
            self.ns[side] = Netns(f"{self.tag}-{side}")
        cam, user = self.ns["cam"], self.ns["user"]
        for link in ("lan0", "ovl0"):
            cam.ip("link", "add", link, "type", "veth", "peer", "name", link, "netns", user.name)
        for side, other in (("cam", "user"), ("user", "cam")):
            ns = self.ns[side]
            ns.ip("addr", "add", f"{LAN[side]}/24", "dev", "lan0")
            ns.ip("addr", "add", f"{OVERLAY[side]}/24", "dev", "ovl0")
            ns.ip("link", "set", "lan0", "up")
            ns.ip("link", "set", "ovl0", "up")
            ns.ip("route", "add", "default", "via", LAN[other])
        self.broker = Broker(
            self.workdir / "broker",
            nodes=[_Named("camera", self.cam_id), _Named("viewer", self.viewer_id)],
            controllers=["controller"],
            views={self.viewer_id: [self.cam_id]},
            listen=OVERLAY["cam"],
            argv_prefix=tuple(cam.argv()),
        )
        self.broker.start()
        for home, node_id in ((self.camera, self.cam_id), (self.viewer, self.viewer_id)):
            config = tomllib.loads(home.config_file.read_text())
            config["mqtt"] = msgspec.to_builtins(self.broker.config_for(node_id))
            home.config_file.write_text(tomli_w.dumps(config))
        return self

    def ring(self, callee: str) -> None:
        """The controller's `cmd/call`: the camera calls `callee` (mosquitto_pub)."""
        b = self.broker
        self.ns["cam"].run(
            "mosquitto_pub",
            "-h",
            OVERLAY["cam"],
            "-p",
            str(b.port),
            "--cafile",
            str(b.ca_file),
            "-u",
            "controller",
            "-P",
            b.password_files["controller"].read_text().strip(),
            "-t",
            f"{b.prefix}/{self.cam_id}/cmd/call/controller",
            "-m",
            callee,
            "-q",
            "1",
        )

    def start_camera(self, timeout: float = 60) -> None:
        notify_dir = Path(tempfile.mkdtemp(prefix="mnw"))
        notify_path = notify_dir / "notify"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        env = dict(self.env, NOTIFY_SOCKET=str(notify_path))
        env.pop("WATCHDOG_USEC", None)
        with open(self.workdir / "camera.log", "wb") as log:
            proc = subprocess.Popen(
                self.ns["cam"].argv(*media_node(), "-v", "run", "--home", str(self.camera.path)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.procs.append(proc)
        try:
            if not wait_ready(notify, proc, timeout):
                raise AssertionError(f"media-node run did not get ready:\n{self.log('camera')[-3000:]}")
        finally:
            notify.close()
            notify_path.unlink(missing_ok=True)
            notify_dir.rmdir()

    def start_web(self, timeout: float = 60) -> str:
        """`media-node web` in the user's namespace; returns the URL it prints."""
        out = self.workdir / "web.out"
        with open(out, "wb") as stdout, open(self.workdir / "web.log", "wb") as log:
            proc = subprocess.Popen(
                self.ns["user"].argv(
                    *media_node(), "-v", "web", "--home", str(self.viewer.path), "--port", "0"
                ),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=log,
                env=self.env,
            )
        self.procs.append(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = out.read_text()
            if text.strip():
                self.url = text.split()[0]
                return self.url
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"media-node web printed no URL:\n{self.log('web')[-3000:]}")

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def teardown(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        broker = getattr(self, "broker", None)
        if broker is not None:
            broker.stop()
        for ns in self.ns.values():
            ns.destroy()
        self.ns.clear()
