"""`file:PATH` — an H.264 file (raw Annex-B .h264, MP4/MKV, or MPEG-TS) demuxed without
decoding, converted to canonical Annex-B and looped at real-time pace."""

from __future__ import annotations

from pathlib import Path

import av
from av.video.stream import VideoStream

from .annexb import ParameterSetCache, is_annexb
from .loop import LoopedClip
from .source import PASSTHROUGH, MediaError

MAX_CLIP_BYTES = 256 * 1024 * 1024  # the clip is held in memory to loop it


def read_access_units(path: Path) -> tuple[list[bytes], float]:
    """All access units of the file's first H.264 stream in canonical Annex-B form
    (SPS/PPS before every IDR), and its frame rate (0 when the file does not say)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"file:{path}: cannot open: {e}") from None
    try:
        if not container.streams.video:
            raise MediaError(f"file:{path}: has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise MediaError(
                f"file:{path}: video is {stream.codec_context.name}, not H.264 "
                "(re-encode it once: ffmpeg -i IN -c:v libx264 -profile:v baseline -bf 0 OUT.mp4)"
            )
        extradata = stream.codec_context.extradata or b""
        # MP4/MKV store length-prefixed NAL units (avcC); aiortc needs start codes.
        bsf = None
        if extradata and not is_annexb(extradata):
            bsf = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        cache = ParameterSetCache(extradata if is_annexb(extradata) else None)
        aus: list[bytes] = []
        total = 0

        def take(packet: av.Packet[VideoStream]) -> None:
            nonlocal total
            data = bytes(packet)
            if data:
                au = cache.prepare(data)
                total += len(au)
                if total > MAX_CLIP_BYTES:
                    raise MediaError(f"file:{path}: larger than {MAX_CLIP_BYTES >> 20} MiB; cut it")
                aus.append(au)

        for packet in container.demux(stream):
            if bsf is None:
                if packet.size:
                    take(packet)
            else:
                for out in bsf.filter(packet if packet.size else None):
                    take(out)
        rate = stream.average_rate
        # A raw .h264 stream without timing says 25 (FFmpeg's guess), not the truth.
        fps = float(rate) if rate and container.format.name != "h264" else 0.0
        return aus, fps
    except av.FFmpegError as e:
        raise MediaError(f"file:{path}: cannot read: {e}") from None
    finally:
        container.close()


class FileSource(LoopedClip):
    kind = "file"

    def __init__(self, path: str | Path, fps: float = 0.0, loop: bool = True):
        self.path = Path(path)
        if not self.path.is_file():
            raise MediaError(f"file:{self.path}: no such file")
        aus, file_fps = read_access_units(self.path)
        super().__init__(aus, fps or file_fps or 30.0, loop=loop)
        self._info.label = PASSTHROUGH
        self._info.note = f"{self.path.name}: {len(aus)} frames looped"
