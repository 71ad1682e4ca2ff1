"""Our media path without the daemon, in its own process: node.media's MediaPublisher
(file: source, fan-out, encoded track, sender hooks) attached to N loopback peer
connections that offer to N bench receivers.

    python -m bench.senders.node_publisher CLIP.h264 [--viewers N] [--au-log F]

This isolates the publisher's cost from the daemon's (links, transports, overlay ICE);
the daemon itself is measured by bench/nodes.py."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from aiortc import RTCSessionDescription

from node.config import MediaSection
from node.media import make_publisher

from .. import loopback
from ..au import AuLog
from ..probe import install_source_probe
from ..wire import emit, read_line


async def run(args) -> None:
    log = AuLog(args.au_log) if args.au_log else None
    if log:
        install_source_probe(log)
    publisher = make_publisher(MediaSection(video=f"file:{args.clip}", audio="none"))
    await publisher.start()
    pcs = []
    for i in range(args.viewers):
        pc = loopback.peer_connection()
        publisher.attach(pc, name=f"viewer{i}")

        def _state(pc=pc, i=i):
            if pc.connectionState == "connected":
                emit({"type": "event", "name": "connected", "index": i, "t_ns": time.monotonic_ns()})

        pc.on("connectionstatechange", _state)
        await pc.setLocalDescription(await pc.createOffer())
        emit({"type": "offer", "index": i, "sdp": pc.localDescription.sdp})
        pcs.append(pc)
    for pc in pcs:
        answer = await asyncio.to_thread(read_line)
        if not answer:
            return
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await asyncio.to_thread(sys.stdin.readline)  # until the harness says stop
    for pc in pcs:
        await pc.close()
    await publisher.stop()
    if log:
        log.close()
    emit({"type": "result"})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("--viewers", type=int, default=1)
    ap.add_argument("--au-log", default="")
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
