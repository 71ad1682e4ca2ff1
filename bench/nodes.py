"""Figures measured on our node as it runs: the daemon (bench/probe.py node, the code of
`media-node run`) in one process with a file: source, viewer nodes in other processes
asking it for views over the file drop (or MQTT), exactly as a person's viewer would."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .baselines import match_latency
from .homes import make_nodes
from .inputs import Clip
from .procstat import fd_count, rss_bytes, thread_count
from .session import VENV_PY, Peer, measure_window
from .stats import summary_ms


class NodeRig:
    """A camera daemon and `viewers` viewer homes under `root` (wiped first)."""

    def __init__(
        self,
        root: Path,
        clip: Clip,
        viewers: int,
        logdir: Path,
        *,
        audio: str = "none",
        mqtt: dict | None = None,
        max_calls: int = 0,
        video: str = "",
    ):
        if root.exists():
            shutil.rmtree(root)
        self.root = root
        self.logdir = logdir
        self.cam, self.viewers = make_nodes(root, viewers)
        calls = {"max_calls": max(4, max_calls or viewers + 2)}
        cam_sections = {
            "media": {"video": video or f"file:{clip.h264}", "audio": audio},
            "calls": calls,
            "filedrop": {"enabled": True},
        }
        if mqtt:
            cam_sections["mqtt"] = mqtt
        self.cam.configure(**cam_sections)
        for v in self.viewers:
            v.configure(filedrop={"enabled": False}, **({"mqtt": mqtt} if mqtt else {}))
        self.daemon: Peer | None = None
        self.clients: list[Peer] = []

    def start(self, au_log: Path | None = None, timeout: float = 60.0) -> Peer:
        env = {"BENCH_AU_LOG": str(au_log)} if au_log else {}
        self.daemon = Peer(
            "daemon", [VENV_PY, "-m", "bench.probe", "node", str(self.cam.home.path)], self.logdir, env=env
        )
        self.daemon.expect("event", timeout, "ready")
        return self.daemon

    def viewer(
        self,
        i: int,
        via: str,
        *,
        calls: int = 1,
        seconds: float = 0.0,
        first_frame: bool = False,
        au_log: Path | None = None,
        wait_go: bool = False,
        tag: str = "",
        pause: float = 0.0,
    ) -> Peer:
        v = self.viewers[i]
        argv = [
            VENV_PY,
            "-m",
            "bench.probe",
            "viewer",
            str(v.home.path),
            "cam",
            via,
            "--calls",
            str(calls),
            "--seconds",
            str(seconds),
        ]
        argv += ["--first-frame"] if first_frame else []
        argv += ["--wait-go"] if wait_go else []
        argv += ["--pause", str(pause)] if pause else []
        env = {"BENCH_AU_LOG": str(au_log)} if au_log else {}
        p = Peer(f"viewer{i}{tag}", argv, self.logdir, env=env)
        self.clients.append(p)
        return p

    def filedrop(self) -> str:
        return f"file:{self.cam.home.path}"

    def close(self) -> None:
        for c in self.clients:
            c.kill()
        if self.daemon is not None:
            self.daemon.stop(20)


def _calls(peer: Peer, n: int, timeout: float) -> list[dict]:
    out = []
    for _ in range(n):
        out.append(peer.expect("call", timeout))
    return out


def streaming(
    root: Path,
    clip: Clip,
    logdir: Path,
    viewers: int,
    warmup: float,
    window: float,
    profile_seconds: float = 0.0,
    video: str = "",
) -> dict:
    """Daemon CPU/RSS with `viewers` viewers receiving (figures 1, 4 and 5a); then,
    with `profile_seconds`, a py-spy profile of the daemon (after the CPU window, so the
    sampler never counts against it)."""
    rig = NodeRig(root, clip, viewers, logdir, video=video)
    try:
        daemon = rig.start()
        span = warmup + window + profile_seconds + 60
        clients = [rig.viewer(i, rig.filedrop(), seconds=span, wait_go=True) for i in range(viewers)]
        for c in clients:
            c.expect("event", 60, "ready")
        for c in clients:
            c.send("go")
        # every viewer has its first frame once its call reports... which it does only at
        # the end; so wait until the daemon reports all calls connected instead.
        connected = 0
        end = time.monotonic() + 60
        while connected < viewers and time.monotonic() < end:
            connected += 1 if daemon.expect("event", end - time.monotonic(), "call-connected") else 0
        time.sleep(warmup)
        usage = measure_window(daemon.pid, window)
        prof = None
        if profile_seconds:
            from .profile import profile

            prof = profile(daemon.pid, profile_seconds, logdir)
        results = []
        for c in clients:
            c.send("stop")
        for c in clients:
            try:
                results.append(c.expect("call", 30))
            except Exception as e:
                results.append({"error": str(e)})
        frames = [r.get("frames", 0) for r in results]
        mbit = [r.get("bytes", 0) * 8 / 1e6 for r in results]
        out = {
            **usage.to_json(),
            "viewers": viewers,
            "frames_min": min(frames),
            "frames_max": max(frames),
            "mbit_received": round(sum(mbit) / max(1, len(mbit)), 2),
            "failed": sum(1 for r in results if "error" in r),
            "source": (video or "file:").split(":", 1)[0],
        }
        if prof is not None:
            out["profile"] = prof
        return out
    finally:
        rig.close()


def latency(root: Path, clip: Clip, logdir: Path, warmup: float, window: float) -> dict:
    rig = NodeRig(root, clip, 1, logdir)
    s_log, r_log = logdir / "node-daemon.send.au", logdir / "node-daemon.recv.au"
    for p in (s_log, r_log):
        p.unlink(missing_ok=True)
    try:
        rig.start(au_log=s_log)
        c = rig.viewer(0, rig.filedrop(), seconds=warmup + window, au_log=r_log)
        c.expect("call", warmup + window + 60)
        c.expect("result", 30)  # the viewer flushes its log as it exits
    finally:
        rig.close()
    return match_latency(s_log, r_log)


def ttff(root: Path, clip: Clip, logdir: Path, via: str, calls: int, pause: float = 1.0) -> dict:
    """Time from the link handed to the transport ("file" or "mqtt") to the first
    decoded frame, per call; one warm-up call first (not counted). Calls are `pause` s
    apart: the node rate-limits forced IDRs (0.5 s), so calls back to back would measure
    that limit, not a viewer arriving on its own."""
    broker = None
    if via == "mqtt":
        from .mqttclient import Broker

        broker = Broker(root.parent / "broker")
    rig = NodeRig(root, clip, 1, logdir, audio="tone", mqtt=broker.config() if broker else None)
    try:
        rig.start()
        target = rig.filedrop() if via == "file" else via
        c = rig.viewer(0, target, calls=calls + 1, first_frame=True, tag=f"-ttff-{via[:4]}", pause=pause)
        got = _calls(c, calls + 1, 60)[1:]
    finally:
        rig.close()
        if broker:
            broker.stop()
    errors = [g["error"] for g in got if "error" in g]
    ok = [g for g in got if "error" not in g and g.get("first_decoded_ns")]
    out = summary_ms([(g["first_decoded_ns"] - g["sent_ns"]) / 1e9 for g in ok])
    out["answer"] = summary_ms([(g["answered_ns"] - g["sent_ns"]) / 1e9 for g in ok])
    out["connected"] = summary_ms(
        [(g["connected_ns"] - g["sent_ns"]) / 1e9 for g in ok if g.get("connected_ns")]
    )
    out["first_au"] = summary_ms([(g["first_au_ns"] - g["sent_ns"]) / 1e9 for g in ok if g["first_au_ns"]])
    out["failed"] = len(errors)
    out["pause_s"] = pause
    if errors:
        out["errors"] = errors[:3]
    return out


# Before each churn snapshot: the daemon trims the heap 2 s after a call ends, at most
# once per 10 s (node.memory.MemoryTrimmer's defaults); a snapshot taken sooner counts
# the last calls' freed memory that the pending trim gives back.
CHURN_SETTLE = 13.0


def churn(
    root: Path,
    clip: Clip,
    logdir: Path,
    calls: int,
    via: str = "mqtt",
    warmup: int = 5,
    settle: float = CHURN_SETTLE,
) -> dict:
    """Figure 5b: `calls` views in a row (each until its first frame), then the daemon's
    RSS, open fds and threads against the same after `warmup` calls, each snapshot
    `settle` s (CHURN_SETTLE) after the last call. Also a snapshot half-way, so the second half's
    growth shows whether it levels off. Over MQTT by default (the transport most fleets
    use); `via="filedrop"` exercises the drop folders."""
    broker = None
    if via == "mqtt":
        from .mqttclient import Broker

        broker = Broker(root.parent / "broker")
    rig = NodeRig(root, clip, 1, logdir, audio="tone", mqtt=broker.config() if broker else None)
    target = rig.filedrop() if via == "file" else via
    got: list[dict] = []
    try:
        daemon = rig.start()
        warm = rig.viewer(0, target, calls=warmup, tag="-warm")
        _calls(warm, warmup, 60)
        warm.expect("result", 30)
        time.sleep(settle)
        before = _snapshot(daemon.pid)
        snaps = []
        wall = 0.0
        for part, n in enumerate((calls // 2, calls - calls // 2)):
            c = rig.viewer(0, target, calls=n, tag=f"-churn{part}")
            start = time.monotonic()
            got += _calls(c, n, 60)
            wall += time.monotonic() - start
            c.expect("result", 30)
            time.sleep(settle)
            snaps.append(_snapshot(daemon.pid))
        middle, after = snaps
    finally:
        rig.close()
        if broker:
            broker.stop()
    failed = sum(1 for g in got if "error" in g)
    return {
        "calls": calls,
        "via": via,
        "warmup_calls": warmup,
        "failed": failed,
        "seconds": round(wall, 1),
        "before": before,
        "after": after,
        "rss_growth_mib": round(after["rss_mib"] - before["rss_mib"], 1),
        "fd_growth": after["fds"] - before["fds"],
        "thread_growth": after["threads"] - before["threads"],
        "middle": middle,
        "rss_growth_second_half_mib": round(after["rss_mib"] - middle["rss_mib"], 1),
        "settle_s": settle,
    }


def _snapshot(pid: int) -> dict:
    return {"rss_mib": round(rss_bytes(pid) / 2**20, 1), "fds": fd_count(pid), "threads": thread_count(pid)}
