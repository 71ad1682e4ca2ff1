"""`testsrc` — the embedded default: a generated pattern encoded ONCE in software
(PyAV libx264, constrained baseline) at start-up, then looped like a file. The CPU
encodes a few seconds of video once; it is labelled as a software source."""

from __future__ import annotations

import fractions
import logging

import av

from .annexb import normalize
from .loop import LoopedClip
from .source import SOFTWARE_FALLBACK, MediaError

log = logging.getLogger(__name__)


def encode_pattern(
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    seconds: float = 2.0,
    gop: int = 30,
    bitrate: int = 800_000,
    pattern: str = "testsrc2",
) -> list[bytes]:
    """Canonical Annex-B access units of a lavfi pattern, constrained baseline, SPS/PPS
    repeated on every IDR (x264 without global headers writes them in-band)."""
    try:
        source = av.open(f"{pattern}=size={width}x{height}:rate={fps}", format="lavfi")
    except av.FFmpegError as e:
        raise MediaError(f"testsrc: cannot generate the pattern: {e}") from None
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.framerate = fractions.Fraction(fps)
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.gop_size = gop
    ctx.bit_rate = bitrate
    ctx.profile = "Constrained Baseline"
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
    }
    aus: list[bytes] = []
    count = max(1, round(seconds * fps))
    try:
        for i, frame in enumerate(source.decode(video=0)):
            if i >= count:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, ctx.time_base
            # lavfi marks frames as I; x264 would make every frame an IDR.
            frame.pict_type = av.video.frame.PictureType.NONE
            aus.extend(normalize(bytes(p)) for p in ctx.encode(frame))
        aus.extend(normalize(bytes(p)) for p in ctx.encode(None))
    finally:
        source.close()
    return aus


class TestPatternSource(LoopedClip):
    kind = "testsrc"
    __test__ = False  # not a pytest class

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        gop: int = 30,
        bitrate: int = 800_000,
        seconds: float = 2.0,
    ):
        aus = encode_pattern(width, height, fps, seconds, gop, bitrate)
        super().__init__(aus, fps)
        self._info.label = SOFTWARE_FALLBACK
        self._info.note = f"test pattern encoded once in software (libx264), {len(aus)} frames looped"
