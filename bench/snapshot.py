"""Figure 7: what one snapshot costs (node.media.snapshot: one IDR decoded with PyAV,
encoded as a JPEG that fits the default [snapshot] max_bytes), per input clip.

The media path never decodes; this is the only decode the node does, and only when
asked. Measured in this process on the clip's own IDRs: wall time and the process's CPU
time (all threads: FFmpeg's decoder threads too) of keyframe_to_jpeg, which is exactly
what a snapshot request runs in its worker thread. `python -m bench.snapshot` runs just
this figure on the 720p and 1080p inputs."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import av

from node.config import SnapshotSection
from node.media.snapshot import keyframe_to_jpeg


def keyframes(h264: Path, count: int) -> list[bytes]:
    """The first `count` IDR access units of a raw Annex-B clip (SPS/PPS in front)."""
    found: list[bytes] = []
    with av.open(str(h264), format="h264") as container:
        for packet in container.demux(video=0):
            if packet.is_keyframe and packet.size:
                found.append(bytes(packet))
                if len(found) >= count:
                    break
    if not found:
        raise RuntimeError(f"{h264}: no IDR access unit")
    return found


def measure(h264: Path, repeats: int = 10, max_bytes: int | None = None) -> dict[str, object]:
    limit = max_bytes or SnapshotSection().max_bytes
    idrs = keyframes(h264, 5)
    keyframe_to_jpeg(idrs[0], limit)  # warm-up: codec set-up, page faults
    wall, cpu, sizes, quality = [], [], [], []
    size = (0, 0)
    for i in range(repeats):
        au = idrs[i % len(idrs)]
        w0, c0 = time.perf_counter(), time.process_time()
        snap = keyframe_to_jpeg(au, limit)
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        sizes.append(len(snap.jpeg))
        quality.append(snap.quality)
        size = (snap.width, snap.height)
    return {
        "size": f"{size[0]}x{size[1]}",
        "snapshots": repeats,
        "idr_bytes_median": int(statistics.median(len(a) for a in idrs)),
        "wall_ms_median": round(statistics.median(wall), 1),
        "wall_ms_max": round(max(wall), 1),
        "cpu_ms_median": round(statistics.median(cpu), 1),
        "jpeg_bytes_median": int(statistics.median(sizes)),
        "quantiser_median": statistics.median(quality),
        "max_bytes": limit,
    }


METHOD = (
    "one snapshot = decode one IDR access unit of the clip (PyAV H.264) + encode it as a JPEG "
    "at the source's size, stepping the mjpeg quantiser (2 best .. 31) up until it fits the "
    "default max_bytes; wall time and process CPU time (all threads) of that call, median of N "
    "after a warm-up"
)


def main() -> None:
    import json

    from .inputs import CLIPS, ensure_clip

    out: dict[str, object] = {"method": METHOD}
    for name in ("720p30", "1080p30"):
        clip = ensure_clip(CLIPS[name], 6)
        out[name] = measure(clip.h264, repeats=20)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
