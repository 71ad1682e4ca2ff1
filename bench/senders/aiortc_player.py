"""aiortc's own sender paths, in their own process: MediaPlayer on the clip, H.264
negotiated, offer on stdout, answer from stdin.

    python -m bench.senders.aiortc_player --mode encode|passthrough CLIP.ts [--au-log F]

encode: what an aiortc user gets by default: MediaPlayer decodes the file and aiortc
re-encodes every frame with libx264 (its H264Encoder: preset medium, zerolatency,
500 kb/s..3 Mb/s). passthrough: MediaPlayer(decode=False), aiortc's own packet path,
as a reference for what the bare library costs."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.codecs import h264
from aiortc.contrib.media import MediaPlayer

from .. import loopback
from ..au import AuLog
from ..wire import emit, read_line


def h264_only(pc) -> None:
    caps = RTCRtpSender.getCapabilities("video").codecs
    prefs = [
        c
        for c in caps
        if c.mimeType == "video/H264"
        and c.parameters.get("profile-level-id") == "42e01f"
        and c.parameters.get("packetization-mode") == "1"
    ]
    prefs += [c for c in caps if c.mimeType == "video/rtx"]
    for t in pc.getTransceivers():
        if t.kind == "video":
            t.setCodecPreferences(prefs)


def install_probe(log: AuLog) -> None:
    """Logs each AU as aiortc's sender takes it from the track (the hand-over)."""
    original = h264.H264Encoder.pack

    def pack(self, packet):
        log.add(bytes(packet), time.monotonic_ns())
        return original(self, packet)

    h264.H264Encoder.pack = pack  # type: ignore[method-assign]  # the bench measures aiortc itself


async def run(args) -> None:
    log = AuLog(args.au_log) if args.au_log else None
    if log and args.mode == "passthrough":
        install_probe(log)
    player = MediaPlayer(args.clip, decode=(args.mode == "encode"), loop=True)
    video = player.video
    if video is None:
        raise RuntimeError(f"{args.clip} has no video")
    pc = loopback.peer_connection()
    pc.addTransceiver(video, direction="sendonly")
    h264_only(pc)

    @pc.on("connectionstatechange")
    def _state():
        if pc.connectionState == "connected":
            emit({"type": "event", "name": "connected", "t_ns": time.monotonic_ns()})

    await pc.setLocalDescription(await pc.createOffer())
    emit({"type": "offer", "sdp": pc.localDescription.sdp})
    answer = await asyncio.to_thread(read_line)
    if not answer:
        return
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await asyncio.to_thread(sys.stdin.readline)  # until the harness says stop
    await pc.close()
    video.stop()
    if log:
        log.close()
    emit({"type": "result"})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["encode", "passthrough"], required=True)
    ap.add_argument("--au-log", default="")
    ap.add_argument("clip")
    asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    main()
