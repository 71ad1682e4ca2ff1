"""A camera that is absent or fails is an error state, not a substitute and not an exit.

`GuardedSource` wraps the configured video source. When the source cannot start (no
/dev/video9, no Pi camera, picamera2 not importable, an RTSP camera that is down) the
node keeps running: the source is *unavailable*, with the reason in the log, and a
thread retries it with backoff until it starts. Meanwhile view-requests get a signed
`unavailable` error and status/events say `source: unavailable`. Nothing else is ever
sent in the camera's place: the test pattern is only used when `media.video = "testsrc"`
is configured.

`UnconfiguredSource` stands for "no video source at all" (a board profile without a
default source, e.g. rtsp-camera with media.video empty): always unavailable, with the
setting to fix in the reason."""

from __future__ import annotations

import logging
import threading
import time

from .source import AccessUnit, Backoff, EncodedVideoSource, MediaError, VideoInfo

log = logging.getLogger(__name__)

AVAILABLE, UNAVAILABLE = "available", "unavailable"


class UnconfiguredSource(EncodedVideoSource):
    """No video source is configured; start() always says which setting to fill in."""

    kind = "none"

    def __init__(self, why: str):
        super().__init__()
        self.why = why

    def _start(self) -> None:
        raise MediaError(self.why)

    def _stop(self) -> None:
        pass


class GuardedSource(EncodedVideoSource):
    """The configured source, started and restarted so that a failure is a state.

    `stale_after`: seconds without an access unit (once the source had started) after
    which it counts as unavailable too, until video flows again (the fan-out's stall
    watchdog restarts it meanwhile)."""

    def __init__(self, inner: EncodedVideoSource, backoff: Backoff | None = None, stale_after: float = 10.0):
        super().__init__()
        self.inner = inner
        self.kind = inner.kind
        self.self_healing = getattr(inner, "self_healing", False)
        self.stale_after = stale_after
        self.reason = "not started"
        self._backoff = backoff or Backoff(1.0, 30.0)
        self._running = False  # the inner source started and was not stopped since
        self._started_at = 0.0
        self._retry: threading.Thread | None = None
        self._retry_stop = threading.Event()
        self._lock = threading.Lock()

    # --- state ------------------------------------------------------------------------
    def state(self) -> str:
        return UNAVAILABLE if self.unavailable_reason() else AVAILABLE

    def unavailable_reason(self) -> str:
        """Empty while video flows (or the source just started); else why not."""
        if not self._running:
            return self.reason
        last = max(self.last_au_at or 0.0, self._started_at)
        idle = time.monotonic() - last
        if self.stale_after and idle > self.stale_after:
            return f"no video from the {self.kind} source for {idle:.0f} s"
        return ""

    def retrying(self) -> bool:
        """True while this wrapper's own retry thread is trying to start the source (the
        fan-out's stall watchdog leaves it alone meanwhile)."""
        return self._retry is not None and self._retry.is_alive()

    # --- delegation -------------------------------------------------------------------
    def info(self) -> VideoInfo:
        return self.inner.info()

    def alive(self) -> bool:
        # Retrying counts as alive: the node is doing what it can, a restart of the
        # whole daemon would not help (the watchdog must not restart-loop it).
        return self.retrying() or not self._running or self.inner.alive()

    def request_keyframe(self) -> None:
        if self._running:
            self.inner.request_keyframe()

    def set_bitrate(self, bps: int) -> None:
        self.inner.set_bitrate(bps)

    # --- lifecycle --------------------------------------------------------------------
    def _forward(self, au: AccessUnit) -> None:
        self.frames += 1
        self.last_au_at = time.monotonic()
        sink = self._sink
        if sink is not None:
            sink(au)

    def _try_start(self) -> bool:
        with self._lock:
            if self._retry_stop.is_set() and threading.current_thread() is self._retry:
                return True  # stopped meanwhile: give up quietly
            try:
                self.inner.start(self._forward)
            except Exception as e:  # any failure of a camera is a state, never the daemon's end
                self.reason = _reason(self.kind, e)
                return False
            self._running = True
            self._started_at = time.monotonic()
            self.reason = ""
            self._backoff.reset()
            return True

    def _start(self) -> None:
        self._retry_stop.clear()
        if self._try_start():
            return
        log.error(
            "video source %s is unavailable: %s; view-requests are refused until it starts "
            "(retrying with backoff)",
            self.kind,
            self.reason,
        )
        self._retry = threading.Thread(target=self._retry_loop, name=f"{self.kind}-retry", daemon=True)
        self._retry.start()

    def _retry_loop(self) -> None:
        attempts = 0
        while not self._backoff.wait(self._retry_stop):
            attempts += 1
            previous = self.reason
            if self._try_start():
                if not self._retry_stop.is_set():
                    log.info("video source %s is available again (attempt %d)", self.kind, attempts)
                return
            if self.reason != previous:
                log.error("video source %s is still unavailable: %s", self.kind, self.reason)
            else:
                log.debug("video source %s: attempt %d failed: %s", self.kind, attempts, self.reason)

    def _stop(self) -> None:
        self._retry_stop.set()
        retry = self._retry
        if retry is not None and retry is not threading.current_thread():
            retry.join(10)
        self._retry = None
        with self._lock:
            if self._running:
                self._running = False
                self.reason = "stopped"
                self.inner.stop()


def _reason(kind: str, e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if isinstance(e, MediaError) else f"{kind}: {type(e).__name__}: {text}"


__all__ = ["AVAILABLE", "UNAVAILABLE", "GuardedSource", "UnconfiguredSource"]
