"""Per-process-tree CPU, memory and file descriptors from /proc (no psutil needed).

CPU is user+sys time over wall time, summed over a process and its live descendants,
so a daemon that runs helpers (ffmpeg, a source thread, a subprocess) is charged for
them. 100 % = one core busy the whole interval."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    # comm may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """user+sys of one process (all its threads), in seconds."""
    f = _stat_fields(pid)
    return (int(f[11]) + int(f[12])) / TICK  # utime, stime (fields 14, 15)


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@dataclass
class Usage:
    wall: float
    cpu: float  # seconds of user+sys
    rss_max: int
    rss_last: int

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall > 0 else 0.0

    def to_json(self) -> dict:
        return {
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "cpu_percent": round(self.cpu_percent, 2),
            "rss_max_mib": round(self.rss_max / 2**20, 1),
            "rss_last_mib": round(self.rss_last / 2**20, 1),
        }


class TreeMeter:
    """Measures one process tree over a window: `start()`, sample now and then
    (`sample()` keeps RSS and catches short-lived children), `stop()` -> Usage."""

    def __init__(self, pid: int):
        self.pid = pid
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._t0 = 0.0
        self.rss_max = 0
        self.rss_last = 0

    def _read(self) -> dict[int, float]:
        now: dict[int, float] = {}
        for p in tree(self.pid):
            try:
                now[p] = cpu_seconds(p)
            except (OSError, ValueError, IndexError):
                pass
        return now

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._base = self._read()
        self._last = dict(self._base)
        self.sample()

    def sample(self) -> None:
        for p, v in self._read().items():
            self._last[p] = v
        rss = 0
        for p in tree(self.pid):
            try:
                rss += rss_bytes(p)
            except OSError:
                pass
        self.rss_last = rss
        self.rss_max = max(self.rss_max, rss)

    def stop(self) -> Usage:
        self.sample()
        wall = time.monotonic() - self._t0
        cpu = sum(v - self._base.get(p, 0.0) for p, v in self._last.items())
        return Usage(wall, cpu, self.rss_max, self.rss_last)


def measure(pid: int, seconds: float, every: float = 0.5) -> Usage:
    """Blocks for `seconds`, sampling every `every`; ends early if the process exits."""
    m = TreeMeter(pid)
    m.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(every, max(0.0, end - time.monotonic())))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        m.sample()
    return m.stop()
