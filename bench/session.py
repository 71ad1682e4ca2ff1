"""Run measured processes and wire an offer/answer between them (bench/wire.py).

`Peer` is one child process speaking JSON lines; `Session` connects one sender to one or
more receivers and measures the sender's process tree over a steady window."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from .procstat import TreeMeter, Usage

REPO = Path(__file__).resolve().parent.parent
VENV_PY = sys.executable
SYSTEM_PY = "/usr/bin/python3"  # python3-gi / GStreamer bindings live here, not in the venv


class PeerError(RuntimeError):
    pass


class Peer:
    """A child process; its stdout lines are parsed as JSON onto a queue."""

    def __init__(self, name: str, argv: list[str], logdir: Path, env: dict | None = None):
        self.name = name
        logdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = logdir / f"{name}.stderr"
        self._err = open(self.stderr_path, "wb")
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=full_env,
            cwd=str(REPO),
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None  # Popen(stdout=PIPE)
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    self.lines.put(json.loads(line))
                except ValueError:
                    pass
        self.lines.put(None)

    def expect(self, kind: str, timeout: float, name: str | None = None) -> dict:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise PeerError(
                    f"{self.name}: no {kind} {name or ''} within {timeout:.0f} s "
                    f"(see {self.stderr_path}): {self.tail()}"
                )
            try:
                msg = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise PeerError(f"{self.name} exited (rc={self.proc.poll()}) before {kind}: {self.tail()}")
            if msg.get("type") == "error":
                raise PeerError(f"{self.name}: {msg.get('message')}")
            if msg.get("type") == kind and (name is None or msg.get("name") == name):
                return dict(msg)

    def send(self, obj: dict | str) -> None:
        try:
            stdin = self.proc.stdin
            assert stdin is not None  # Popen(stdin=PIPE)
            stdin.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def tail(self, n: int = 400) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> dict | None:
        """Asks for a result (a line on stdin), then waits; kills on timeout."""
        result = None
        if self.proc.poll() is None:
            self.send("stop")
            try:
                result = self.expect("result", timeout)
            except PeerError:
                pass
        self.kill()
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, 9)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        self._err.close()


def receiver(
    name: str, logdir: Path, decode: bool = False, au_log: Path | None = None, node_receiver: bool = False
) -> Peer:
    argv = [VENV_PY, "-m", "bench.receiver"] + (["--decode"] if decode else [])
    argv += ["--node-receiver"] if node_receiver else []
    if au_log:
        argv += ["--au-log", str(au_log)]
    return Peer(name, argv, logdir)


def connect(sender: Peer, receivers: list[Peer], timeout: float = 30.0) -> None:
    """Relay the sender's offers (one per receiver, in order) and the answers back, then
    wait until every receiver is connected."""
    for recv in receivers:
        recv.send(sender.expect("offer", timeout))
    for recv in receivers:
        sender.send(recv.expect("answer", timeout))
    for recv in receivers:
        recv.expect("event", timeout, "connected")


def measure_window(pid: int, window: float, every: float = 0.5) -> Usage:
    meter = TreeMeter(pid)
    meter.start()
    end = time.monotonic() + window
    while time.monotonic() < end:
        time.sleep(min(every, max(0.0, end - time.monotonic())))
        meter.sample()
    return meter.stop()


def stream_and_measure(
    sender: Peer, receivers: Peer | list[Peer], warmup: float, window: float, connect_timeout: float = 30.0
) -> tuple[Usage, list[dict]]:
    """Connect, let `warmup` s of media pass, measure the sender's tree for `window` s.
    Returns its usage and each receiver's result."""
    receivers = receivers if isinstance(receivers, list) else [receivers]
    try:
        connect(sender, receivers, connect_timeout)
        time.sleep(warmup)
        usage = measure_window(sender.pid, window)
        results = [r.stop() or {} for r in receivers]
        return usage, results
    finally:
        for r in receivers:
            r.kill()
        sender.stop()


def ecdsa_pem(out: Path) -> Path:
    """An ECDSA P-256 self-signed certificate + key for webrtcbin (aiortc refuses RSA)."""
    pem = out / "gst-ecdsa.pem"
    if not pem.exists():
        out.mkdir(parents=True, exist_ok=True)
        key, crt = out / "gst-ecdsa.key", out / "gst-ecdsa.crt"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(crt),
                "-days",
                "3650",
                "-subj",
                "/CN=webrtcbin",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        pem.write_text(crt.read_text() + key.read_text())
    return pem
