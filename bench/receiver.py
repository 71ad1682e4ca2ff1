"""A bench viewer in its own process: answers one offer (from stdin) with aiortc and
counts what arrives.

    python -m bench.receiver [--decode] [--au-log FILE] [--node-receiver]

Without --decode it swaps aiortc's H.264 decoder for a counter (as a recorder does), so
a viewer costs little and many can run beside the node; with --decode every frame is
decoded with PyAV. Either way each complete access unit (what aiortc's jitter buffer
hands to the decoder) is logged as `key time_ns` for the latency figure.

--node-receiver uses our own receive side instead (node.media.MediaReceiver: frames
released on the RTP marker bit, recorded without decoding), probed the same way."""

from __future__ import annotations

import argparse
import asyncio
import fractions
import sys
import threading
import time

import av
from aiortc import RTCSessionDescription, rtcrtpreceiver
from aiortc.codecs.base import Decoder

from . import loopback
from .au import AuLog
from .wire import emit, read_line


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.aus = 0
        self.bytes = 0
        self.decoded = 0
        self.first_au_ns = 0
        self.first_decoded_ns = 0


def _count_au(counts: Counts, log: AuLog | None, data: bytes) -> None:
    """One access unit complete at the receiver: count it and log it for latency matching."""
    t = time.monotonic_ns()
    with counts.lock:
        counts.aus += 1
        counts.bytes += len(data)
        counts.first_au_ns = counts.first_au_ns or t
    if log:
        log.add(data, t)


def install_probe(counts: Counts, log: AuLog | None, decode: bool) -> None:
    original = rtcrtpreceiver.get_decoder  # type: ignore[attr-defined]

    class Probe(Decoder):
        def __init__(self, inner: Decoder | None):
            self.inner = inner

        def decode(self, encoded_frame):
            data = encoded_frame.data
            _count_au(counts, log, data)
            if self.inner is None:
                p = av.Packet(data)
                p.pts = encoded_frame.timestamp
                p.time_base = fractions.Fraction(1, 90000)
                return [p]
            frames = self.inner.decode(encoded_frame)
            if frames:
                with counts.lock:
                    counts.decoded += len(frames)
                    counts.first_decoded_ns = counts.first_decoded_ns or time.monotonic_ns()
            return frames

    def get_decoder(codec):
        if codec.mimeType.lower() == "video/h264":
            return Probe(original(codec) if decode else None)
        return original(codec)

    rtcrtpreceiver.get_decoder = get_decoder  # type: ignore[attr-defined]


def install_node_probe(counts: Counts, log: AuLog | None) -> None:
    from node.media import hooks

    original = hooks.PassthroughDecoder.decode

    def decode(self, encoded_frame):
        _count_au(counts, log, encoded_frame.data)
        before = self.decoded
        out = original(self, encoded_frame)
        if self.decoded > before:
            with counts.lock:
                counts.decoded += self.decoded - before
                counts.first_decoded_ns = counts.first_decoded_ns or time.monotonic_ns()
        return out

    hooks.PassthroughDecoder.decode = decode  # type: ignore[method-assign]  # a measuring probe


async def run(args) -> None:
    counts = Counts()
    log = AuLog(args.au_log) if args.au_log else None
    if args.node_receiver:
        install_node_probe(counts, log)
    else:
        install_probe(counts, log, args.decode)
    offer = await asyncio.to_thread(read_line)
    if not offer or offer.get("type") != "offer":
        emit({"type": "error", "message": "expected an offer line on stdin"})
        return
    pc = loopback.peer_connection()
    connected = asyncio.Event()
    t_connected = 0

    @pc.on("connectionstatechange")
    def _state():
        nonlocal t_connected
        if pc.connectionState == "connected":
            t_connected = time.monotonic_ns()
            connected.set()
            emit({"type": "event", "name": "connected", "t_ns": t_connected})

    tasks = []
    node_receiver = None
    if args.node_receiver:
        from node.media import MediaReceiver

        node_receiver = MediaReceiver(pc, decode=args.decode)

    @pc.on("track")
    def _track(track):
        if node_receiver is not None:
            return  # MediaReceiver consumes the tracks itself

        async def drain():
            try:
                while True:
                    await track.recv()
            except Exception:
                pass

        tasks.append(asyncio.ensure_future(drain()))

    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    emit({"type": "answer", "sdp": pc.localDescription.sdp})
    # Run until the harness says stop (a line or EOF on stdin), or the time limit.
    try:
        await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), args.seconds)
    except TimeoutError:
        pass
    with counts.lock:
        result = {
            "type": "result",
            "aus": counts.aus,
            "bytes": counts.bytes,
            "decoded": counts.decoded,
            "first_au_ns": counts.first_au_ns,
            "first_decoded_ns": counts.first_decoded_ns,
            "connected_ns": t_connected,
        }
    for t in tasks:
        t.cancel()
    if node_receiver is not None:
        await node_receiver.close()
    await pc.close()
    if log:
        log.close()
    emit(result)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decode", action="store_true")
    ap.add_argument("--au-log", default="")
    ap.add_argument("--node-receiver", action="store_true")
    ap.add_argument("--seconds", type=float, default=600.0, help="hard limit")
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
