"""Figure 8: how long the short commands take from a cold process, against the bare
interpreter (`python -c pass`) on the same machine in the same run.

Each command runs `runs` times in a fresh process, interleaved with the others (after
one warm-up run each that fills the OS page cache, as any earlier use would); the
figure is the fastest wall time minus the fastest `python -c pass`: on a shared
machine the fastest run is the one least slowed by others. Medians and the CPU time
(user+sys of the child, which other load barely moves) are kept beside it.

The children run with bytecode writing allowed (PYTHONDONTWRITEBYTECODE removed from
their environment), so the warm-up leaves the .pyc files an installed package has: a
shell or CI that sets it would otherwise make every run compile the node's modules
from source, which no installed node does."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

from .homes import make_nodes
from .session import VENV_PY

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\na=mid:0\r\na=recvonly\r\n"
    "a=rtpmap:96 H264/90000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\n"
    "a=candidate:1 1 udp 2130706431 127.0.0.10 40000 typ host\r\n"
)


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _media_node() -> str:
    return str(Path(VENV_PY).with_name("media-node"))


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `argv`."""
    before = os.times()
    t0 = time.perf_counter()
    r = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, env=_ENV)
    wall = time.perf_counter() - t0
    after = os.times()
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:3])} failed: {r.stderr.strip()[-300:]}")
    cpu = after.children_user + after.children_system - before.children_user - before.children_system
    return wall, cpu


def measure(root: Path, runs: int = 15) -> dict:
    cam, (viewer,) = make_nodes(root, 1)
    sdp = root / "offer.sdp"
    sdp.write_text(SDP)
    exe = _media_node()
    make = [
        exe,
        "link",
        "make",
        "view-request",
        "--to",
        "cam",
        "--sdp-file",
        str(sdp),
        "--home",
        str(viewer.home.path),
    ]
    link = subprocess.run(
        make, capture_output=True, text=True, check=True, timeout=60, env=_ENV
    ).stdout.strip()
    commands = {
        "pass": [VENV_PY, "-c", "pass"],
        "id": [exe, "id", "--home", str(cam.home.path)],
        "link_make": make,
        "link_inspect": [exe, "link", "inspect", link, "--home", str(cam.home.path)],
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    cpus: dict[str, list[float]] = {k: [] for k in commands}
    for argv in commands.values():
        _run(argv)  # warm-up: page cache, .pyc files
    for _ in range(runs):
        for name, argv in commands.items():
            wall, used = _run(argv)
            walls[name].append(wall)
            cpus[name].append(used)

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 1)

    best = {k: min(v) for k, v in walls.items()}
    mid = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    names = [k for k in commands if k != "pass"]
    return {
        "python_c_pass_ms": ms(best["pass"]),
        "over_python_ms": {k: ms(best[k] - best["pass"]) for k in names},
        "wall_min_ms": {k: ms(best[k]) for k in commands},
        "wall_median_ms": {k: ms(mid[k]) for k in commands},
        "cpu_median_ms": {k: ms(cpu[k]) for k in commands},
        "cpu_over_python_ms": {k: ms(cpu[k] - cpu["pass"]) for k in names},
        "runs": runs,
        "method": (
            f"{runs} cold processes per command, interleaved, after one warm-up each; over_python_ms = "
            "fastest wall minus the fastest `python -c pass` (same interpreter); CPU = user+sys of the child"
        ),
    }
