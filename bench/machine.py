"""What the numbers were measured on (goes at the top of docs/benchmarks.md)."""

from __future__ import annotations

import os
import platform
import subprocess


def _first(path: str, key: str) -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=20).stdout
        return out.splitlines()[0].strip() if out else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def describe() -> dict:
    import aiortc
    import av

    mem_kb = _first("/proc/meminfo", "MemTotal").split()[0] if _first("/proc/meminfo", "MemTotal") else "0"
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem_kb) / 2**20, 1),
        "kernel": platform.release(),
        "os": os_release(),
        "python": platform.python_version(),
        "aiortc": aiortc.__version__,
        "av": av.__version__,
        "gstreamer": _version(["gst-launch-1.0", "--gst-version"]),
        "ffmpeg": _version(["ffmpeg", "-version"]),
        "virtualised": "hypervisor" in open("/proc/cpuinfo").read(),
    }


def os_release() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()
