"""Benchmark inputs: constrained-baseline H.264 clips made once with ffmpeg/libx264 and
cached under OUT/inputs/ (OUT: `--out`, default `default_out()`).

Each clip exists as raw Annex-B (`.h264`, what our file: source and aiortc's MediaPlayer
read) and as MPEG-TS (`.ts`, what GStreamer needs: a raw .h264 through h264parse has no
PTS in GStreamer 1.22, so its buffers would carry no timestamps). Both carry the same
access units."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path


def default_out() -> Path:
    """Where a run writes when no --out is given: ./media-node-bench under the current
    directory if it can be written, else one in the temp dir; never inside the
    installed package."""
    import os
    import tempfile

    here = Path.cwd()
    if os.access(here, os.W_OK):
        return here / "media-node-bench"
    return Path(tempfile.gettempdir()) / "media-node-bench"


OUT = default_out()  # the default at import time; run() resolves it again


@dataclass(frozen=True)
class ClipSpec:
    name: str
    width: int
    height: int
    fps: int
    bitrate: int  # bit/s, CBR-ish
    seconds: int
    gop: int = 60  # an IDR every 2 s at 30 fps

    @property
    def label(self) -> str:
        return f"{self.height}p{self.fps}"


@dataclass(frozen=True)
class Clip:
    spec: ClipSpec
    h264: Path
    ts: Path
    frames: int
    measured_bitrate: int

    def to_json(self) -> dict:
        return {
            **asdict(self.spec),
            "h264": str(self.h264),
            "ts": str(self.ts),
            "frames": self.frames,
            "measured_bitrate": self.measured_bitrate,
        }


CLIPS = {
    "720p30": ClipSpec("720p30", 1280, 720, 30, 4_000_000, 30),
    "1080p30": ClipSpec("1080p30", 1920, 1080, 30, 6_000_000, 30),
}


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if not exe:
        raise RuntimeError("ffmpeg not found: install the Debian package ffmpeg")
    return exe


def _encode(spec: ClipSpec, dest: Path) -> None:
    # testsrc2 + temporal noise: moving content that costs real bits at every frame, so
    # the bitrate is close to the target (plain testsrc compresses to ~1 Mb/s).
    # repeat-headers: SPS/PPS before every IDR, as the Pi encoder is set up to send.
    kbps = spec.bitrate // 1000
    cmd = [
        _ffmpeg(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps},noise=alls=10:allf=t",
        "-t",
        str(spec.seconds),
        "-an",
        "-c:v",
        "libx264",
        "-profile:v",
        "baseline",
        "-level",
        "4.0",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(spec.gop),
        "-keyint_min",
        str(spec.gop),
        "-sc_threshold",
        "0",
        "-b:v",
        f"{kbps}k",
        "-minrate",
        f"{kbps}k",
        "-maxrate",
        f"{kbps}k",
        "-bufsize",
        f"{kbps // 2}k",
        "-x264-params",
        "nal-hrd=cbr:repeat-headers=1:aud=0",
        "-bsf:v",
        "h264_mp4toannexb",
        "-f",
        "h264",
        str(dest),
    ]
    subprocess.run(cmd, check=True, timeout=600)


def _to_ts(src: Path, dest: Path, fps: int) -> None:
    subprocess.run(
        [
            _ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-r",
            str(fps),
            "-i",
            str(src),
            "-c",
            "copy",
            "-f",
            "mpegts",
            str(dest),
        ],
        check=True,
        timeout=300,
    )


def count_access_units(path: Path) -> int:
    """Access units in an Annex-B file (one per first-slice NAL with first_mb == 0)."""
    import av

    with av.open(str(path), format="h264") as c:
        return sum(1 for p in c.demux(video=0) if p.size)


def ensure_clip(spec: ClipSpec, seconds: int | None = None, out: Path = OUT) -> Clip:
    """The clip for `spec` (optionally shorter), made on first use and reused after."""
    if seconds is not None and seconds != spec.seconds:
        spec = ClipSpec(spec.name, spec.width, spec.height, spec.fps, spec.bitrate, seconds, spec.gop)
    folder = out / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"{spec.label}_{spec.bitrate // 1000}k_{spec.seconds}s"
    h264, ts = base.with_suffix(".h264"), base.with_suffix(".ts")
    if not h264.exists() or h264.stat().st_size == 0:
        tmp = h264.with_suffix(".h264.tmp")
        _encode(spec, tmp)
        tmp.rename(h264)
    if not ts.exists() or ts.stat().st_size == 0:
        tmp = ts.with_suffix(".ts.tmp")
        _to_ts(h264, tmp, spec.fps)
        tmp.rename(ts)
    frames = count_access_units(h264)
    bitrate = int(h264.stat().st_size * 8 * spec.fps / max(frames, 1))
    return Clip(spec, h264, ts, frames, bitrate)
