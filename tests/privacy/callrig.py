"""A full view call through the CLI across the lab: `media-node run` in namespace A (the
camera) and `media-node view camera --via file:HOME_A` in namespace B (the viewer), with
every link that crosses the file drop collected for inspection."""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from node.home import Home
from node.identity import Identity
from node.links import LinkError, LinkOpener
from node.peers import PeerStore, make_peer

from .netlab import NEBULA, STATIC, STATIC_CIDR, WIREGUARD, Lab

OVERLAY_INTERFACES = {"yggdrasil": "ygg0", "static": "ovl0", "wireguard": "wg0", "nebula": "nebula1"}
# The unit's User= and empty CapabilityBoundingSet=, for a daemon run as the service user.
SERVICE_USER = ("65534", "65534")  # nobody:nogroup


def as_service_user(argv: list[str]) -> list[str]:
    uid, gid = SERVICE_USER
    return [
        "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
        "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--", *argv,
    ]  # fmt: skip


PLACEHOLDERS = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}


def media_node() -> list[str]:
    script = Path(sys.executable).with_name("media-node")
    return [str(script)] if script.exists() else [sys.executable, "-m", "node.cli"]


_LIBC = ctypes.CDLL(None, use_errno=True)
IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_NONBLOCK = 0x8, 0x80, 0x100, 0o4000


# `media-node view` with FileDropClient.request wrapped: each reply it returns is also
# appended to the file named by argv[1]; the rest of argv is the CLI's.
VIEWER_TAP = """
import sys
from node.transports.filedrop.client import FileDropClient
request = FileDropClient.request
async def tapped(self, peer, link_text, timeout=60.0):
    reply = await request(self, peer, link_text, timeout)
    with open(sys.argv[1], "a") as f:
        f.write(reply.strip() + "\\n")
    return reply
FileDropClient.request = tapped
from node.cli import main
main(sys.argv[2:])
"""


class LinkCollector:
    """Copies every link file that appears in a home's drop folders (the daemon moves or
    deletes them as it goes; files are renamed into place, so a read sees a whole link).
    A scan runs on every inotify event in those folders (and every `interval` anyway):
    the viewer takes its answer out of outbox/ within one 50 ms poll, so a collector
    polling on its own would miss it now and then."""

    def __init__(self, homes: list[Home], interval: float = 0.01):
        self.dirs = [d for h in homes for d in (h.inbox, h.outbox, h.done, h.rejected, h.work)]
        self.seen: dict[Path, str] = {}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _scan(self) -> None:
        for d in self.dirs:
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for name in names:
                path = d / name
                if name.startswith(".") or name.endswith(".json") or path in self.seen:
                    continue
                try:
                    self.seen[path] = path.read_text()
                except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
                    pass

    def _run(self) -> None:
        fd = _LIBC.inotify_init1(IN_NONBLOCK)
        try:
            for d in self.dirs:
                if fd >= 0:
                    _LIBC.inotify_add_watch(fd, os.fsencode(d), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)
            while not self._stop.is_set():
                self._scan()
                if fd < 0:
                    self._stop.wait(self.interval)
                    continue
                ready, _, _ = select.select([fd], [], [], self.interval)
                if ready:
                    try:
                        os.read(fd, 65536)  # the events only wake the scan
                    except BlockingIOError:
                        pass
        finally:
            if fd >= 0:
                os.close(fd)

    def __enter__(self) -> LinkCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._scan()

    def texts(self) -> set[str]:
        return {t.strip() for t in self.seen.values() if t.strip()}


def wait_ready(sock: socket.socket, proc: subprocess.Popen, timeout: float) -> bool:
    """READY=1 from the daemon over $NOTIFY_SOCKET (sd_notify); False if it never says so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        sock.settimeout(0.1)
        try:
            if b"READY=1" in sock.recv(4096).split(b"\n"):
                return True
        except TimeoutError:
            pass
    return False


def host_of(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a summary field: "ip", "ip:port", "[ip]:port" or {"address": ...}."""
    if isinstance(value, dict):
        value = value.get("address") or value.get("ip") or value.get("host")
    if not isinstance(value, str):
        return None
    text = value.strip()
    candidates = [text.strip("[]"), text.rsplit(":", 1)[0].strip("[]")]
    if text.startswith("[") and "]" in text:
        candidates.insert(0, text[1 : text.index("]")])
    for candidate in candidates:
        try:
            return ipaddress.ip_address(candidate)
        except ValueError:
            continue
    return None


_IPV4 = re.compile(r"(?<![\w.:])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def addresses_in(text: str) -> set:
    """Every literal IP address anywhere in a text (fingerprints and such do not parse)."""
    found = set()
    for token in _IPV4.findall(text) + _IPV6.findall(text):
        try:
            found.add(ipaddress.ip_address(token))
        except ValueError:
            pass
    return found


def sdp_addresses(sdp: str) -> dict[str, set]:
    """Addresses by where the SDP names them (c=, o=, candidates, raddr, a=rtcp)."""
    out: dict[str, set] = {
        "c": set(),
        "o": set(),
        "candidate": set(),
        "raddr": set(),
        "rtcp": set(),
        "candidate-types": set(),
    }
    for line in sdp.splitlines():
        f = line.split()
        if line.startswith("c=") and len(f) >= 3:
            out["c"].add(f[2])
        elif line.startswith("o=") and len(f) >= 6:
            out["o"].add(f[5])
        elif line.startswith("a=candidate:") and len(f) >= 8:
            out["candidate"].add(f[4])
            out["candidate-types"].add(f[7])
            if "raddr" in f:
                out["raddr"].add(f[f.index("raddr") + 1])
        elif line.startswith("a=rtcp:") and len(f) >= 4:
            out["rtcp"].add(f[3])
    return out


@dataclass
class ViewResult:
    returncode: int
    stdout: str
    stderr: str
    daemon_returncode: int | None
    daemon_log: str
    daemon_ready: bool
    links: list  # OpenedLink
    unopened: list  # (text, reason)
    timings: dict  # seconds: daemon start -> READY=1, the view command, SIGTERM -> exit

    @property
    def summary(self) -> dict:
        """The JSON summary `view --json` prints (the whole stdout, or its last JSON line)."""
        text = self.stdout.strip()
        try:
            return json.loads(text)
        except ValueError:
            pass
        for line in reversed(text.splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        raise AssertionError(f"view printed no JSON summary:\n{self.stdout}\n{self.stderr}")


class CallRig:
    """Two homes (camera in A, viewer in B) configured for one provider, allowlisting each
    other. With `unprivileged`, the camera's daemon runs as the service user with no
    capabilities (homes then live where that user can reach)."""

    def __init__(
        self, lab: Lab, workdir: Path, provider: str, unprivileged: bool = False, talk: bool = False
    ):
        """`talk`: the viewer also sends a tone (`view --talk tone`) to the camera's
        speaker, an ALSA `file` device writing `speaker.raw` in `workdir`."""
        self.lab, self.provider, self.unprivileged, self.talk = lab, provider, unprivileged, talk
        if unprivileged:
            workdir = Path(tempfile.mkdtemp(dir=lab.public))
            workdir.chmod(0o755)
        self.speaker = workdir / "speaker.raw"
        self.homes = {"a": Home(workdir / "camera"), "b": Home(workdir / "viewer")}
        self.workdir = workdir
        self.replies = workdir / "viewer-replies.txt"  # what the viewer took (VIEWER_TAP)
        # Homes and allowlists through the API the CLI's init/peers add use (cheaper than
        # four more interpreter starts); the call itself goes through the CLI.
        self.ids = {}
        for (side, home), name in zip(self.homes.items(), ("camera", "viewer"), strict=False):
            home.create(name)
            self.ids[side] = Identity.load(home.key_file).node_id
        self.overlay = {
            "yggdrasil": {s: lab.ygg[s].address for s in "ab"},
            "static": STATIC,
            "wireguard": WIREGUARD,
            "nebula": NEBULA,
        }[provider]
        self.overlay_interface = OVERLAY_INTERFACES[provider]
        for side in "ab":
            self.configure(side)
        self.trust("a", "b", "viewer", "view,talk" if talk else "view")
        self.trust("b", "a", "camera", "view")
        # Loaded now: once the camera's key belongs to the service user, Identity.load
        # refuses it to root (as it should).
        self._identities = [Identity.load(h.key_file) for h in self.homes.values()]
        if unprivileged:
            subprocess.run(["chown", "-R", ":".join(SERVICE_USER), str(self.homes["a"].path)], check=True)

    def nebula_certs(self, side: str) -> Path:
        """The peer certificates this side holds: the other host's, and a rogue one
        (another CA, the camera's name and address) that verification must ignore."""
        d = self.workdir / f"nebula-peers-{side}"
        if not d.exists():
            d.mkdir()
            other = self.lab.nebula["b" if side == "a" else "a"]
            shutil.copy(other.workdir / "host.crt", d / f"{other.name}.crt")
            shutil.copy(self.lab.nebula_rogue.workdir / "host.crt", d / "rogue.crt")
        return d

    def configure(self, side: str, **overlay: str) -> None:
        home = self.homes[side]
        config = tomllib.loads(home.config_file.read_text())
        if self.provider == "yggdrasil":
            config["overlay"].update(provider="yggdrasil", yggdrasil_admin=self.lab.ygg[side].admin)
        elif self.provider == "wireguard":
            config["overlay"].update(
                provider="wireguard", wireguard_interface="wg0", wireguard_peers=str(self.lab.wg[side].table)
            )
        elif self.provider == "nebula":
            config["overlay"].update(
                provider="nebula",
                nebula_config=str(self.lab.nebula[side].config),
                nebula_certs=str(self.nebula_certs(side)),
            )
        else:
            config["overlay"].update(provider="static", interface="ovl0", cidr=STATIC_CIDR)
        config["overlay"].update(overlay)
        config["media"].update(video="testsrc", audio="tone", width=320, height=240, fps=15)
        if self.talk and side == "a":
            config["media"]["speaker"] = "alsa:media_node_privacy_speaker"
        home.config_file.write_text(tomli_w.dumps(config))

    def binding(self, other: str) -> dict[str, str]:
        if self.provider == "yggdrasil":
            return {"yggdrasil_key": self.lab.ygg[other].key}
        if self.provider == "wireguard":
            return {"wireguard_key": self.lab.wg[other].public_key}
        if self.provider == "nebula":
            # The viewer names the camera's certificate by name, the camera the viewer's by fingerprint.
            node = self.lab.nebula[other]
            return {"nebula_cert": node.name if other == "a" else node.fingerprint}
        return {"address": STATIC[other]}

    def trust(self, side: str, other: str, name: str, allow: str, **binding: str) -> None:
        peer = make_peer(name, self.ids[other], allow, **(binding or self.binding(other)))
        PeerStore(self.homes[side].peers_file).add(peer, replace=True)

    def identities(self) -> list[Identity]:
        return self._identities

    def open_links(self, texts: set[str]) -> tuple[list, list]:
        opened, failed = [], []
        for text in texts:
            reasons = []
            for identity in self.identities():
                try:
                    opened.append(LinkOpener(identity, None, None, skew=600).open(text))
                    break
                except LinkError as e:
                    reasons.append(f"{e.reason}: {e.detail}")
            else:
                failed.append((text[:120], reasons))
        return opened, failed

    def run_viewer(self, seconds: int = 3, timeout: float = 90) -> subprocess.CompletedProcess:
        """`media-node view camera` in namespace B, through A's file drop. The viewer takes
        its reply out of outbox/ within milliseconds, faster than a collector can be sure to
        copy it on a loaded machine, so the CLI runs under VIEWER_TAP, which also writes
        each reply it took to `self.replies` (the CLI itself is unchanged)."""
        self.replies.unlink(missing_ok=True)
        argv = [sys.executable, "-c", VIEWER_TAP, str(self.replies)]
        argv += ["view", "camera", "--home", str(self.homes["b"].path)]
        argv += ["--via", f"file:{self.homes['a'].path}", "--seconds", str(seconds), "--json"]
        if self.talk:
            argv += ["--talk", "tone"]
        return subprocess.run(
            self.lab.ns["b"].argv(*argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def view(self, seconds: int = 3, timeout: float = 90) -> ViewResult:
        a = self.lab.ns["a"]
        notify_dir = Path(tempfile.mkdtemp(prefix="mnn"))  # short path: sun_path is 108 bytes
        notify_path = notify_dir / "notify"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        daemon_log = self.workdir / "daemon.log"
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
        env.pop("WATCHDOG_USEC", None)
        if self.talk:
            conf = self.workdir / "speaker.conf"
            conf.write_text(
                'pcm.media_node_privacy_speaker {\n type file\n slave.pcm "null"\n'
                f' file "{self.speaker}"\n format "raw"\n}}\n'
            )
            env["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{conf}"
        run = [*media_node(), "-v", "run", "--home", str(self.homes["a"].path)]
        if self.unprivileged:
            notify_dir.chmod(0o711)
            notify_path.chmod(0o666)  # systemd's notify socket accepts the service user too
            env["HOME"] = str(self.homes["a"].path)
            run = as_service_user(run)
        with open(daemon_log, "wb") as log:
            daemon = subprocess.Popen(
                a.argv(*run),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        timings: dict[str, float] = {}
        started = time.monotonic()
        try:
            ready = wait_ready(notify, daemon, timeout=30)
            timings["daemon_ready_s"] = round(time.monotonic() - started, 2)
            if daemon.poll() is not None:
                raise AssertionError(
                    f"media-node run exited ({daemon.returncode}) before serving:\n"
                    f"{daemon_log.read_text()[-3000:]}"
                )
            with LinkCollector(list(self.homes.values())) as links:
                started = time.monotonic()
                viewer = self.run_viewer(seconds, timeout)
                timings["view_s"] = round(time.monotonic() - started, 2)
        finally:
            daemon_rc = None
            started = time.monotonic()
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)  # ends its calls cleanly
                try:
                    daemon_rc = daemon.wait(20)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait(10)
            else:
                daemon_rc = daemon.returncode
            timings["daemon_stop_s"] = round(time.monotonic() - started, 2)
            notify.close()
            notify_path.unlink(missing_ok=True)
            notify_dir.rmdir()
        taken = self.replies.read_text().split() if self.replies.exists() else []
        opened, failed = self.open_links(links.texts() | set(taken))
        return ViewResult(
            viewer.returncode,
            viewer.stdout,
            viewer.stderr,
            daemon_rc,
            daemon_log.read_text(),
            ready,
            opened,
            failed,
            timings,
        )
