"""What accumulates per call in the daemon: `python -m bench.memprobe [--calls N]`.

The daemon (bench.probe node) runs with BENCH_MEM=DIR: tracemalloc from the start
(BENCH_MEM_FRAMES frames per traceback), and on SIGUSR1 it writes DIR/snap-K.pickle
(a tracemalloc snapshot after gc.collect()) and DIR/snap-K.json (RSS, gc object counts
per type, malloc arena stats, threads). The driver makes `warmup` calls, snapshots,
makes `calls` more, snapshots, and prints what grew, per call. Not part of
`media-node bench`'s JSON."""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import signal
import threading
import time
import tracemalloc
from pathlib import Path


def install_daemon() -> None:
    folder = os.environ.get("BENCH_MEM")
    if not folder:
        return
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if os.environ.get("BENCH_MEM_FRAMES", "0") != "0":
        tracemalloc.start(int(os.environ["BENCH_MEM_FRAMES"]))
    count = [0]

    def snap(*_: object) -> None:
        count[0] += 1
        k = count[0]
        gc.collect()
        if os.environ.get("BENCH_MEM_TRIM"):
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        objects = gc.get_objects()
        types = collections.Counter(type(o).__qualname__ for o in objects)
        import weakref

        refs = collections.Counter(
            "weakref->" + type(o()).__qualname__ for o in objects if type(o) is weakref.ReferenceType
        )
        types.update(refs)
        del objects
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(out / f"snap-{k}.pickle"))
        with open("/proc/self/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        info = {
            "rss_kib": int(status["VmRSS"].split()[0]),
            "threads": threading.active_count(),
            "os_threads": int(status["Threads"]),
            "gc_objects": sum(types.values()),
            "types": dict(types.most_common(400)),
            "traced_kib": tracemalloc.get_traced_memory()[0] // 1024 if tracemalloc.is_tracing() else None,
            "thread_names": sorted(t.name for t in threading.enumerate()),
        }
        info.update(_native())
        (out / f"snap-{k}.json").write_text(json.dumps(info))

    # the handler runs in the main thread between bytecodes: the loop is not in the middle of a call
    signal.signal(signal.SIGUSR1, snap)


def _native() -> dict:
    """glibc's own counts (mallinfo2), pymalloc's arenas, and RSS per kind of mapping."""
    import ctypes
    import ctypes.util
    import sys
    import tempfile

    out: dict = {}
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        out["sqlite_in_use_kib"] = lib.sqlite3_memory_used() // 1024
    except (OSError, AttributeError):
        pass
    try:

        class MallInfo2(ctypes.Structure):
            _fields_ = [
                (n, ctypes.c_size_t)
                for n in (
                    "arena",
                    "ordblks",
                    "smblks",
                    "hblks",
                    "hblkhd",
                    "usmblks",
                    "fsmblks",
                    "uordblks",
                    "fordblks",
                    "keepcost",
                )
            ]

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
        mi = libc.mallinfo2()
        out["malloc_in_use_kib"] = (mi.uordblks + mi.hblkhd) // 1024
        out["malloc_free_kib"] = mi.fordblks // 1024
        out["malloc_arena_kib"] = mi.arena // 1024
        out["malloc_mmapped_kib"] = mi.hblkhd // 1024
    except (OSError, AttributeError):
        pass
    with tempfile.TemporaryFile("w+") as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        for line in f:
            if line.startswith("# arenas allocated current") or line.startswith(
                "# bytes in allocated blocks"
            ):
                out["pymalloc " + line[2:].split("=")[0].strip()] = int(line.split("=")[1].replace(",", ""))
    kinds: collections.Counter[str] = collections.Counter()
    name = ""
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5:
                name = parts[5] if len(parts) > 5 else "[anon]"
                if name.startswith("/"):
                    name = "file:" + os.path.basename(name)
                kinds["mappings"] += 1
            elif parts[0] == "Rss:":
                kinds[name] += int(parts[1])
    out["rss_by_mapping_kib"] = dict(kinds.most_common(12))
    return out


def _wait_snap(folder: Path, k: int, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    path = folder / f"snap-{k}.json"
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(path)
        time.sleep(0.1)
    time.sleep(0.5)
    info: dict = json.loads(path.read_text())
    return info


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--more", type=int, default=0, help="then this many more calls, a third snapshot")
    ap.add_argument("--via", default="mqtt", choices=["mqtt", "file"])
    ap.add_argument("--frames", type=int, default=0, help="tracemalloc frames (0: off)")
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) before each snapshot")
    ap.add_argument("--out", type=Path, default=Path("/tmp/memprobe"))
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the daemon")
    args = ap.parse_args()
    from .inputs import CLIPS, ensure_clip
    from .nodes import NodeRig, _calls

    out = args.out
    mem = out / "mem"
    if mem.exists():
        for p in mem.iterdir():
            p.unlink()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    os.environ["BENCH_MEM"] = str(mem)
    os.environ["BENCH_MEM_FRAMES"] = str(args.frames)
    if args.trim:
        os.environ["BENCH_MEM_TRIM"] = "1"
    for kv in args.env:
        k, v = kv.split("=", 1)
        os.environ[k] = v
    clip = ensure_clip(CLIPS["720p30"], 10, out=out)
    broker = None
    if args.via == "mqtt":
        from .mqttclient import Broker

        broker = Broker(out / "broker")
    rig = NodeRig(out / "rig", clip, 1, out / "logs", audio="tone", mqtt=broker.config() if broker else None)
    target = rig.filedrop() if args.via == "file" else "mqtt"
    try:
        daemon = rig.start()
        snaps = []
        for i, n in enumerate([args.warmup, args.calls] + ([args.more] if args.more else [])):
            c = rig.viewer(0, target, calls=n, tag=f"-mem{i}")
            got = _calls(c, n, 60)
            c.expect("result", 30)
            failed = sum(1 for g in got if "error" in g)
            time.sleep(3)  # ended calls finish closing, the trimmer runs
            os.kill(daemon.pid, signal.SIGUSR1)
            snaps.append(_wait_snap(mem, i + 1))
            print(f"after {n} calls ({failed} failed): rss {snaps[-1]['rss_kib']} KiB", flush=True)
    finally:
        rig.close()
        if broker:
            broker.stop()
    if len(snaps) == 3:
        last = snaps[2]
        more = last["rss_kib"] - snaps[1]["rss_kib"]
        print(f"then {args.more} more calls: RSS {more:+d} KiB ({more / args.more:.2f} KiB/call)")
        for key in last:
            if key.startswith(("malloc_", "pymalloc", "sqlite")):
                print(f"  {key}: {snaps[1][key]} -> {last[key]} ({last[key] - snaps[1][key]:+d})")
    a, b = snaps[:2]
    n = args.calls
    growth = b["rss_kib"] - a["rss_kib"]
    print(f"RSS growth over {n} calls: {growth} KiB ({growth / n:.2f} KiB/call)")
    print(
        f"threads {a['os_threads']} -> {b['os_threads']}; gc objects {a['gc_objects']} -> {b['gc_objects']}"
    )
    if a["traced_kib"] is not None:
        print(f"tracemalloc traced {a['traced_kib']} -> {b['traced_kib']} KiB")
    for key in a:
        if key.startswith(("malloc_", "pymalloc", "sqlite")):
            print(f"  {key}: {a[key]} -> {b[key]} ({b[key] - a[key]:+d})")
    maps = set(a["rss_by_mapping_kib"]) | set(b["rss_by_mapping_kib"])
    for m in sorted(
        maps, key=lambda m: -abs(b["rss_by_mapping_kib"].get(m, 0) - a["rss_by_mapping_kib"].get(m, 0))
    )[:6]:
        print(f"  rss {m}: {a['rss_by_mapping_kib'].get(m, 0)} -> {b['rss_by_mapping_kib'].get(m, 0)}")
    grew = {t: b["types"].get(t, 0) - a["types"].get(t, 0) for t in set(a["types"]) | set(b["types"])}
    for t, d in sorted(grew.items(), key=lambda x: -abs(x[1]))[:25]:
        if d:
            print(f"  {d:+7d}  {t}")
    if set(a["thread_names"]) != set(b["thread_names"]):
        print("threads before:", a["thread_names"], "\nafter:", b["thread_names"])
    if args.frames:
        s1 = tracemalloc.Snapshot.load(str(mem / "snap-1.pickle"))
        s2 = tracemalloc.Snapshot.load(str(mem / "snap-2.pickle"))
        filt = [tracemalloc.Filter(False, tracemalloc.__file__)]
        for stat in s2.filter_traces(filt).compare_to(s1.filter_traces(filt), "traceback")[:15]:
            print(f"{stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks")
            for line in stat.traceback.format()[-8:]:
                print("     ", line)


if __name__ == "__main__":
    main()
