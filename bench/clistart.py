"""Figure 7: how long the short commands take from a cold process, against the bare
interpreter (`python -c pass`) on the same machine in the same run.

Each command runs `runs` times in a fresh process (after one warm-up run that fills the
OS page cache and the config memo, as any earlier use of the node would); the figure is
the median wall time minus the median of `python -c pass`. `link make` is also timed
with the config memo removed before each run: the first call after config.toml
changed, which validates it in full."""

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


def _media_node() -> str:
    return str(Path(VENV_PY).with_name("media-node"))


def _wall(argv: list[str], runs: int, before=None) -> list[float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    out = []
    for _ in range(runs):
        if before:
            before()
        t0 = time.perf_counter()
        r = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=60)
        out.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:3])} failed: {r.stderr.strip()[-300:]}")
    return out


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
    link = subprocess.run(make, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    commands = {
        "pass": [VENV_PY, "-c", "pass"],
        "id": [exe, "id", "--home", str(cam.home.path)],
        "link_make": make,
        "link_inspect": [exe, "link", "inspect", link, "--home", str(cam.home.path)],
    }
    medians: dict[str, float] = {}
    for name, argv in commands.items():
        _wall(argv, 1)  # warm-up: page cache, .pyc files, the config memo
        medians[name] = statistics.median(_wall(argv, runs))
    memo = viewer.home.path / ".config-checked.json"
    validating = statistics.median(
        _wall(make, max(5, runs // 3), before=lambda: memo.unlink(missing_ok=True))
    )
    base = medians.pop("pass")
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    return {
        "python_c_pass_ms": ms(base),
        "wall_ms": {k: ms(v) for k, v in medians.items()},
        "over_python_ms": {k: ms(v - base) for k, v in medians.items()},
        "link_make_validating_config_ms": ms(validating - base),
        "runs": runs,
        "method": (
            f"median wall of {runs} cold processes each (after one warm-up run), minus the median of "
            "`python -c pass` with the same interpreter; link_make_validating_config: the first "
            "call after config.toml changed (full validation of the config)"
        ),
    }
