"""`rtsp://...` — an IP camera's H.264 pulled with PyAV and passed through without
decoding. Parameter sets from the session description (extradata) are put before IDRs
that lack them; packets without a timestamp get one; the stream reconnects with backoff."""

from __future__ import annotations

import logging
import re
import threading

import av

from .annexb import ParameterSetCache, is_annexb
from .source import PASSTHROUGH, Backoff, EncodedVideoSource, MediaError, WorkerThread

log = logging.getLogger(__name__)

_USERINFO = re.compile(r"(rtsps?://)[^\s/]*@", re.IGNORECASE)


def redact_urls(text: str) -> str:
    """Any rtsp(s):// URL in `text` with its user:password part replaced by ***."""
    return _USERINFO.sub(r"\1***@", text)


class RtspSource(EncodedVideoSource):
    kind = "rtsp"
    self_healing = True  # reconnects with its own backoff

    def __init__(
        self,
        url: str,
        transport: str = "tcp",
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        max_backoff: float = 30.0,
    ):
        super().__init__()
        if not url.startswith(("rtsp://", "rtsps://")):
            raise MediaError(f"rtsp: {redact_urls(url)!r} is not an rtsp:// URL")
        self.url = url
        self.transport = transport
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.max_backoff = max_backoff
        self._worker: WorkerThread | None = None
        self.connects = 0
        self.pts_filled = 0  # packets that arrived without a timestamp
        self.last_error = ""
        self._info.label = PASSTHROUGH
        self._info.note = "IDR period is the camera's own; keyframe requests cannot force one"

    def _start(self) -> None:
        # The restart backoff is a last resort: _run itself catches everything.
        self._worker = WorkerThread("rtsp-source", self._run, restart=Backoff(1.0, self.max_backoff))
        self._worker.start()

    def _stop(self) -> None:
        if self._worker is not None:
            self._worker.stop(timeout=self.read_timeout + 2)
            self._worker = None

    def _run(self, stop: threading.Event) -> None:
        backoff = Backoff(1.0, self.max_backoff)
        pts_base = 0  # keeps pts increasing across reconnects
        while not stop.is_set():
            try:
                pts_base = self._session(stop, pts_base)
                backoff.reset()
            except (av.FFmpegError, OSError, MediaError) as e:
                self.last_error = self.redact(str(e))
                log.warning(
                    "rtsp: %s: %s; retrying in %.0f s", self._redacted(), self.last_error, backoff.delay
                )
            except Exception as e:  # bad input from the camera must not end the source
                self.last_error = self.redact(f"{type(e).__name__}: {e}")
                log.error(
                    "rtsp: %s: unexpected %s; reconnecting in %.0f s",
                    self._redacted(),
                    self.last_error,
                    backoff.delay,
                )
            if backoff.wait(stop):
                return

    def _redacted(self) -> str:
        # never log camera credentials
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

    def redact(self, text: str) -> str:
        """`text` (an FFmpeg error, which quotes the URL it opened) without the camera's
        user name and password."""
        text = text.replace(self.url, self._redacted())
        userinfo = self.url.partition("://")[2].partition("/")[0].rpartition("@")[0]
        if userinfo:
            text = text.replace(userinfo, "***")
        return redact_urls(text)

    def _session(self, stop: threading.Event, pts_base: int) -> int:
        container = av.open(
            self.url,
            options={"rtsp_transport": self.transport},
            timeout=(self.open_timeout, self.read_timeout),
        )
        try:
            if not container.streams.video:
                raise MediaError("the stream has no video")
            stream = container.streams.video[0]
            if stream.codec_context.name != "h264":
                raise MediaError(f"the camera sends {stream.codec_context.name}; set it to H.264")
            extradata = stream.codec_context.extradata or b""
            cache = ParameterSetCache(extradata if is_annexb(extradata) else None)
            rate = stream.average_rate or stream.guessed_rate
            self._info.fps = float(rate) if rate else self._info.fps
            frame_us = int(1_000_000 / self._info.fps) if self._info.fps else 33_333
            time_base = stream.time_base
            self.connects += 1
            first: int | None = None
            origin_us = pts_base
            last_us = pts_base - frame_us
            for packet in container.demux(stream):
                if stop.is_set():
                    break
                if not packet.size:
                    continue
                if packet.pts is None:
                    # e.g. the first packet of a session: continue from the previous one
                    self.pts_filled += 1
                    pts_us = last_us + frame_us
                else:
                    if first is None:
                        first, origin_us = packet.pts, last_us + frame_us
                    pts_us = origin_us + int((packet.pts - first) * (time_base or 0) * 1_000_000)
                    if pts_us <= last_us:
                        pts_us = last_us + 1
                last_us = pts_us
                self._emit(cache.prepare(bytes(packet)), pts_us)
            return last_us + frame_us
        finally:
            container.close()
