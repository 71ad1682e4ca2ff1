"""Our node, run for measurement in its own process, with optional probes.

    python -m bench.probe node HOME              the daemon (node.service.Service, the
                                                 code behind `media-node run`)
    python -m bench.probe viewer HOME PEER VIA   a viewer node making calls in a row
                                                 (node.calls.CallManager.view, the code
                                                 behind `media-node view`)

Control is JSON lines on stdin/stdout (bench/wire.py). Probes are installed only when
asked, so CPU runs measure the unmodified code:
- BENCH_AU_LOG=FILE in the daemon: each AU as the source hands it over (key, time);
- BENCH_AU_LOG=FILE in the viewer: each AU complete at the viewer (its jitter buffer
  hands it to the receiver), and the viewer times the first *decoded* frame by decoding
  a copy of the first AUs with PyAV until one frame comes out."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from pathlib import Path

from .au import AuLog
from .wire import emit


def install_source_probe(log: AuLog) -> None:
    from node.media.source import EncodedVideoSource

    original = EncodedVideoSource._emit

    def _emit(self, data: bytes, pts_us: int, keyframe: bool | None = None) -> None:
        log.add(data, time.monotonic_ns())
        original(self, data, pts_us, keyframe)

    EncodedVideoSource._emit = _emit  # type: ignore[method-assign]  # a measuring probe


class FirstFrames:
    """Per call: when the first AU completed, and when the first frame decoded."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        import av

        with self.lock:
            self.first_au_ns = 0
            self.first_decoded_ns = 0
            self.codec = av.CodecContext.create("h264", "r")


def install_source_trace(trace) -> None:
    """BENCH_TRACE: per newly joined viewer, when the fan-out queues its first IDR and
    when its sender takes its first AU."""
    from node.media.fanout import Viewer

    offer, get = Viewer.offer, Viewer.get

    def traced_offer(self, au) -> None:
        was = self.waiting_for_idr
        offer(self, au)
        if was and not self.waiting_for_idr:
            trace.mark("first_idr_queued")

    async def traced_get(self):
        au = await get(self)
        if not getattr(self, "_traced", False):
            self._traced = True
            trace.mark("first_get")
        return au

    from node.media.loop import LoopedClip
    from node.media.source import EncodedVideoSource

    request, emit_ = LoopedClip.request_keyframe, EncodedVideoSource._emit

    def traced_request(self) -> None:
        trace.mark("keyframe_requested")
        request(self)

    def traced_emit(self, data: bytes, pts_us: int, keyframe: bool | None = None) -> None:
        t = time.monotonic_ns()
        emit_(self, data, pts_us, keyframe)
        trace.add("source_emit", t, time.monotonic_ns())

    LoopedClip.request_keyframe = traced_request  # type: ignore[method-assign]  # a measuring probe
    EncodedVideoSource._emit = traced_emit  # type: ignore[method-assign]  # a measuring probe
    Viewer.offer = traced_offer  # type: ignore[method-assign]  # a measuring probe
    Viewer.get = traced_get  # type: ignore[method-assign]  # a measuring probe


def install_viewer_probe(first: FirstFrames, log: AuLog | None) -> None:
    import av

    from node.media import hooks

    original = hooks.PassthroughDecoder.decode

    def decode(self, encoded_frame):
        t = time.monotonic_ns()
        data = encoded_frame.data
        if log:
            log.add(data, t)
        with first.lock:
            if not first.first_au_ns:
                first.first_au_ns = t
            if not first.first_decoded_ns:
                try:
                    if first.codec.decode(av.Packet(data)):
                        first.first_decoded_ns = time.monotonic_ns()
                except av.FFmpegError:
                    pass
        return original(self, encoded_frame)

    hooks.PassthroughDecoder.decode = decode  # type: ignore[method-assign]  # a measuring probe


async def run_node(args) -> None:
    from node.home import Home
    from node.service import Service
    from node.workers import install_worker_pool

    from .trace import install

    log = AuLog(os.environ["BENCH_AU_LOG"]) if os.environ.get("BENCH_AU_LOG") else None
    if log:
        install_source_probe(log)
    trace = install("node")
    if trace is not None:
        install_source_trace(trace)
    from .memprobe import install_daemon

    install_daemon()
    install_worker_pool(asyncio.get_running_loop())  # as run_service does for the daemon
    service = Service(Home(Path(args.home)))
    await service.start()

    def on_event(event: dict) -> None:
        if event.get("event") in ("call-started", "call-connected", "call-ended", "rejected"):
            emit({"type": "event", "name": event["event"], "t_ns": time.monotonic_ns()})

    assert service.manager is not None  # started
    service.manager.on_event(on_event)
    emit({"type": "event", "name": "ready", "pid": os.getpid(), "t_ns": time.monotonic_ns()})
    try:
        await asyncio.to_thread(sys.stdin.readline)  # until the harness says stop
    finally:
        await service.stop()
        if log:
            log.close()
    emit({"type": "result"})


def _client_transport(via: str, config, identity):
    if via == "mqtt":
        from .mqttclient import client_transport

        return client_transport(via, config, identity)
    from node.transports import base

    return base.client_transport(via)


class TimedTransport:
    """Wraps a client transport: notes when the link is handed over to it."""

    def __init__(self, inner, trace=None):
        self.inner = inner
        self.sent_ns = 0
        self.trace = trace

    async def request(self, peer, link_text: str, timeout: float) -> str:
        self.sent_ns = time.monotonic_ns()
        reply: str = await self.inner.request(peer, link_text, timeout)
        if self.trace is not None:
            self.trace.add("TimedTransport.request", self.sent_ns, time.monotonic_ns())
        return reply


async def run_viewer(args) -> None:
    from node.calls import CallManager
    from node.config import load_config
    from node.home import Home
    from node.identity import Identity
    from node.links import LinkOpener, ReplayCache
    from node.media import MediaReceiver
    from node.overlay import make_provider
    from node.peers import PeerStore

    from .trace import install

    log = AuLog(os.environ["BENCH_AU_LOG"]) if os.environ.get("BENCH_AU_LOG") else None
    first = FirstFrames()
    probe = bool(log) or args.first_frame
    trace = install("viewer")
    if probe:
        install_viewer_probe(first, log)
    home = Home(Path(args.home))
    identity = Identity.load(home.key_file)
    config = load_config(home.config_file)
    peers = PeerStore(home.peers_file)
    peer = peers.find(args.peer)
    if peer is None:
        raise SystemExit(f"{args.peer!r} is not in {home.peers_file}")
    provider = make_provider(config.overlay)
    replay = ReplayCache(home.replay_db, config.links.clock_skew)
    opener = LinkOpener(identity, peers, replay, skew=config.links.clock_skew)
    manager = CallManager(identity, config, peers, provider, None, opener, receiver_factory=MediaReceiver)
    transport = TimedTransport(_client_transport(args.via, config, identity), trace)
    emit({"type": "event", "name": "ready", "pid": os.getpid()})
    if args.wait_go:
        await asyncio.to_thread(sys.stdin.readline)
    stop = asyncio.Event()

    def _stdin():
        sys.stdin.readline()
        loop.call_soon_threadsafe(stop.set)

    loop = asyncio.get_running_loop()
    threading.Thread(target=_stdin, daemon=True).start()
    ok = failed = 0
    try:
        for i in range(args.calls):
            if stop.is_set():
                break
            if i and args.pause:
                await asyncio.sleep(args.pause)
            first.reset()
            try:
                call = await manager.view(peer, transport)
                answered_ns = time.monotonic_ns()
                if trace is not None:
                    trace.mark("view_returned")
                receiver = call.receiver
                assert isinstance(receiver, MediaReceiver)  # the factory above
                await receiver.wait_video_frames(1, args.frame_timeout)
                if probe:
                    end = time.monotonic() + args.frame_timeout
                    while not first.first_decoded_ns and time.monotonic() < end:  # noqa: ASYNC110  # set by aiortc's decoder thread
                        await asyncio.sleep(0.005)
                if args.seconds:
                    try:
                        await asyncio.wait_for(stop.wait(), args.seconds)
                    except TimeoutError:
                        pass
                if trace is not None:
                    trace.add("first_au", first.first_au_ns, first.first_au_ns)
                    trace.add("first_decoded", first.first_decoded_ns, first.first_decoded_ns)
                summary = receiver.summary()
                await call.end("bench")
                ok += 1
                connected_ns = int(call.connected_at * 1e9) if call.connected_at else 0
                emit(
                    {
                        "type": "call",
                        "index": i,
                        "sent_ns": transport.sent_ns,
                        "answered_ns": answered_ns,
                        "connected_ns": connected_ns,
                        "first_au_ns": first.first_au_ns,
                        "first_decoded_ns": first.first_decoded_ns,
                        "frames": summary.get("video_frames", 0),
                        "bytes": summary.get("video_bytes", 0),
                        "connected_s": round(time.monotonic() - call.connected_at, 3)
                        if call.connected_at
                        else 0,
                    }
                )
            except Exception as e:  # a failed call is counted and reported, the run goes on
                failed += 1
                emit({"type": "call", "index": i, "error": f"{type(e).__name__}: {e}"})
    finally:
        await manager.close()
        replay.close()
        if log:
            log.close()
    emit({"type": "result", "ok": ok, "failed": failed})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="role", required=True)
    n = sub.add_parser("node")
    n.add_argument("home")
    v = sub.add_parser("viewer")
    v.add_argument("home")
    v.add_argument("peer")
    v.add_argument("via")
    v.add_argument("--calls", type=int, default=1)
    v.add_argument("--seconds", type=float, default=0.0, help="receive this long after the first frame")
    v.add_argument("--frame-timeout", type=float, default=20.0)
    v.add_argument("--pause", type=float, default=0.0, help="seconds between calls")
    v.add_argument("--first-frame", action="store_true", help="time the first decoded frame")
    v.add_argument("--wait-go", action="store_true", help="start calling after a line on stdin")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_node(args) if args.role == "node" else run_viewer(args))


if __name__ == "__main__":
    main()
