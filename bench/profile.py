"""Where the node's CPU goes: py-spy samples the daemon while it streams, and the
samples are grouped by the library (or our module) that was running. Optional: without
py-spy (pip install 'media-node[bench]') the profile is skipped with a note."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

GROUPS = [  # first match wins; matched against "file" in each frame of a stack
    ("SRTP (pylibsrtp)", ("pylibsrtp",)),
    ("DTLS/crypto (cryptography, OpenSSL)", ("cryptography", "OpenSSL")),
    ("H.264 packetizer (aiortc codecs/h264)", ("aiortc/codecs",)),
    (
        "RTP sender/RTCP (aiortc rtcrtpsender, rtp)",
        ("aiortc/rtcrtpsender", "aiortc/rtp.py", "aiortc/rtcdtlstransport"),
    ),
    ("ICE/UDP (aioice)", ("aioice",)),
    ("aiortc other", ("aiortc",)),
    ("node media (source, fan-out, track)", ("node/media",)),
    (
        "node calls/transports/links",
        ("node/calls", "node/transports", "node/links", "node/ice", "node/service"),
    ),
    ("watchdog/paho (transports' threads)", ("watchdog", "paho")),
    ("asyncio event loop", ("asyncio",)),
]


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def classify(stack: str) -> str:
    # stacks are root;...;leaf: the deepest frame that belongs to a group decides
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, keys in GROUPS:
            if any(k in frame for k in keys):
                return name
    return "other (interpreter, threads idle in C)"


def profile(pid: int, seconds: float, out: Path) -> dict:
    exe = py_spy()
    if not exe:
        return {"skipped": "py-spy is not installed (pip install 'media-node[bench]')"}
    raw = out / "pyspy.txt"
    # --gil: only threads holding the GIL, i.e. running Python, not waiting in
    # epoll/Condition.wait (which py-spy's idle heuristic may count as active).
    cmd = [
        exe,
        "record",
        "-p",
        str(pid),
        "-d",
        str(int(seconds)),
        "-r",
        "250",
        "-f",
        "raw",
        "-o",
        str(raw),
        "--nonblocking",
        "--gil",
    ]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0 or not raw.exists():
        return {"skipped": f"py-spy failed: {(r.stderr or r.stdout).strip()[-300:]}"}
    result = summarize(raw)
    result["raw"] = str(raw)
    return result


def summarize(raw: Path) -> dict:
    """py-spy's raw (collapsed) output -> shares by part and by function (self time)."""
    groups: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    for line in Path(raw).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        groups[classify(stack)] += n
        leaves[re.sub(r":\d+\)", ")", stack.split(";")[-1].strip())] += n  # per function, not line
    if not total:
        return {"skipped": "py-spy recorded no samples"}
    return {
        "samples": total,
        "note": "py-spy samples of the thread holding the GIL (Python running); shares of those samples",
        "groups": {k: round(100 * v / total, 1) for k, v in groups.most_common()},
        "top_functions": [
            {"function": k, "share": round(100 * v / total, 1)} for k, v in leaves.most_common(12)
        ],
    }
