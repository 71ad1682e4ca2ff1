"""`media-node run` in the camera namespace, and the user's side of the file drop.

The user's client (a browser page, webrtcbin, anything) makes its own complete offer;
the user signs it as a view-request with the viewer home's key (what `media-node link
make view-request --sdp-file` does), drops it into the camera's inbox, and opens the
signed reply (what `media-node link inspect` does). Done here through the same API the
CLI calls, to save two interpreter starts per call."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from privacy.callrig import media_node, wait_ready

from node.home import Home
from node.identity import Identity
from node.links import LinkOpener, make_link
from node.peers import PeerStore, make_peer

from .lab import OVERLAY, OVERLAY_CIDR, UserLab


@dataclass
class Reply:
    kind: str  # answer | error
    sdp: str = ""
    code: str = ""
    message: str = ""


class CameraDaemon:
    """A camera home serving `video` (+ a tone) over the static overlay on ovl0, and a
    viewer home it allowlists with permission `view`."""

    def __init__(self, lab: UserLab, workdir: Path, video: str, audio: str = "tone", size=(640, 480)):
        self.lab = lab
        self.workdir = workdir
        self.camera = Home(workdir / "camera")
        self.viewer = Home(workdir / "viewer")
        self.camera.create("camera")
        self.viewer.create("viewer")
        self.camera_id = Identity.load(self.camera.key_file).node_id
        self.viewer_identity = Identity.load(self.viewer.key_file)
        config = tomllib.loads(self.camera.config_file.read_text())
        config["overlay"].update(provider="static", interface="ovl0", cidr=OVERLAY_CIDR)
        config["media"].update(video=video, audio=audio, width=size[0], height=size[1], fps=15)
        self.camera.config_file.write_text(tomli_w.dumps(config))
        PeerStore(self.camera.peers_file).add(
            make_peer("viewer", self.viewer_identity.node_id, "view", address=OVERLAY["user"])
        )
        PeerStore(self.viewer.peers_file).add(
            make_peer("camera", self.camera_id, "view", address=OVERLAY["cam"])
        )
        self.opener = LinkOpener(self.viewer_identity, PeerStore(self.viewer.peers_file), None, skew=60)
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "daemon.log"
        self._count = 0

    def start(self, timeout: float = 60) -> CameraDaemon:
        notify_dir = Path(tempfile.mkdtemp(prefix="mni"))
        notify_path = notify_dir / "notify"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
        env.pop("WATCHDOG_USEC", None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.lab.ns["cam"].argv(*media_node(), "-v", "run", "--home", str(self.camera.path)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            if not wait_ready(notify, self.proc, timeout):
                raise AssertionError(f"media-node run did not get ready:\n{self.log()[-3000:]}")
        finally:
            notify.close()
            notify_path.unlink(missing_ok=True)
            notify_dir.rmdir()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(self, sdp: str, timeout: float = 30) -> Reply:
        """Sign `sdp` as a view-request, drop it, wait for the reply, verify it."""
        link = make_link(self.viewer_identity, "view-request", self.camera_id, ttl=120, sdp=sdp)
        self._count += 1
        name = f"interop-{os.getpid()}-{self._count}.link"
        tmp = self.camera.inbox / f".{name}.tmp"
        tmp.write_text(link.text)
        tmp.rename(self.camera.inbox / name)
        reply = self.camera.outbox / name
        rejected = self.camera.rejected / f"{name}.reason.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if reply.exists():
                opened = self.opener.open(reply.read_text(), expect_offer=link.digest)
                claims = opened.claims
                if claims.kind == "error":
                    return Reply(
                        "error", code=claims.err.get("code", ""), message=claims.err.get("message", "")
                    )
                return Reply(claims.kind, sdp=claims.sdp)
            if rejected.exists():
                raise AssertionError(f"the camera rejected the link: {rejected.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"no reply within {timeout} s:\n{self.log()[-3000:]}")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            # Seen once (a 1080p camera stopped right after a Chromium call): say so.
            warnings.warn(f"media-node run ignored SIGTERM for 20 s:\n{self.log()[-1500:]}", stacklevel=1)
            self.proc.kill()
            return self.proc.wait(10)
