"""Where the time to first frame goes, per stage: `python -m bench.ttff_trace [--via
mqtt|file] [--calls N] [--out DIR]`.

Runs bench/nodes.ttff (the figure-2 measurement, both processes) with BENCH_TRACE set,
then prints the median of each stage over the calls, on CLOCK_MONOTONIC from the moment
the viewer hands its link to the transport. Not part of `media-node bench`'s JSON."""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from .inputs import CLIPS, ensure_clip
from .trace import read

# (label, process tag, function name, which end): points on the time axis
POINTS = [
    ("daemon: link in hand (transport)", "d", "MqttRequests.serve|FileHandling.process", "start"),
    ("daemon: link opened (verify)", "d", "LinkOpener.open", "end"),
    ("daemon: overlay policy", "d", "CallManager.policy", "end"),
    ("daemon: offer filtered", "d", "filter_incoming_sdp", "end"),
    ("daemon: answer planned", "d", "plan_for", "end"),
    ("daemon: offer applied (setRemoteDescription)", "d", "apply_offer", "end"),
    ("daemon: publisher attached", "d", "MediaPublisher.attach", "end"),
    ("daemon: answer created", "d", "RTCPeerConnection.createAnswer", "end"),
    ("daemon: gathered (setLocalDescription)", "d", "RTCPeerConnection.setLocalDescription", "end"),
    ("daemon: answer signed", "d", "CallManager.sign", "end"),
    ("daemon: handle_link returned", "d", "CallManager.handle_link", "end"),
    ("daemon: reply published (MQTT)", "d", "MqttClient.publish", "end"),
    ("daemon: reply written (file drop)", "d", "ReplySlot.commit", "end"),
    ("daemon: first IDR queued for the viewer", "d", "first_idr_queued", "start"),
    ("viewer: reply at paho's thread", "v", "MqttClient._on_message", "start"),
    ("viewer: reply routed in the loop", "v", "MqttClient._route_safely", "start"),
    ("viewer: reply in hand (transport)", "v", "TimedTransport.request", "end"),
    ("viewer: answer opened (verify)", "v", "LinkOpener.open", "end"),
    ("viewer: answer applied (setRemoteDescription)", "v", "RTCPeerConnection.setRemoteDescription", "end"),
    ("viewer: ICE connected", "v", "RTCIceTransport.start", "end"),
    ("daemon: ICE connected", "d", "RTCIceTransport.start", "end"),
    ("daemon: DTLS connected", "d", "RTCDtlsTransport.start", "end"),
    ("viewer: DTLS connected", "v", "RTCDtlsTransport.start", "end"),
    ("daemon: sender takes its first AU", "d", "first_get", "start"),
    ("viewer: first AU complete", "v", "first_au", "start"),
    ("viewer: first frame decoded", "v", "first_decoded", "start"),
]
DURATIONS = [
    ("daemon verify (LinkOpener.open)", "d", "LinkOpener.open"),
    ("daemon sign (make_link)", "d", "CallManager.sign"),
    ("daemon setRemoteDescription", "d", "apply_offer"),
    ("daemon createAnswer", "d", "RTCPeerConnection.createAnswer"),
    ("daemon setLocalDescription", "d", "RTCPeerConnection.setLocalDescription"),
    ("daemon gather", "d", "RTCIceGatherer.gather"),
    ("daemon DTLS handshake", "d", "RTCDtlsTransport.start"),
    ("viewer verify", "v", "LinkOpener.open"),
    ("viewer setRemoteDescription", "v", "RTCPeerConnection.setRemoteDescription"),
    ("viewer ICE checks", "v", "RTCIceTransport.start"),
    ("viewer DTLS handshake", "v", "RTCDtlsTransport.start"),
]


def calls(lines: list[tuple[str, str, int, int]]) -> list[list[tuple[str, str, int, int]]]:
    """Split the merged lines into calls at each TimedTransport.request start."""
    starts = sorted(s for tag, name, s, _ in lines if tag == "v" and name == "TimedTransport.request")
    out: list[list[tuple[str, str, int, int]]] = []
    for i, t0 in enumerate(starts):
        t1 = starts[i + 1] if i + 1 < len(starts) else 1 << 62
        lo, hi = t0 - 5_000_000, t1 - 5_000_000
        out.append([(tag, n, s - t0, e - t0) for tag, n, s, e in lines if lo <= s < hi])
    return out


def _first(call, tag: str, names: str, end: str) -> float | None:
    for t, n, s, e in sorted(call, key=lambda x: x[2]):
        if t == tag and n in names.split("|") and s >= -1_000_000:
            return float(e if end == "end" else s) / 1e6
    return None


def analyse(path: Path, skip: int = 1) -> dict:
    per_call = calls(read(path))[skip:]
    points = {}
    for label, tag, name, end in POINTS:
        vals = [v for c in per_call if (v := _first(c, tag, name, end)) is not None]
        points[label] = round(statistics.median(vals), 1) if vals else None
    durations = {}
    for label, tag, name in DURATIONS:
        vals = []
        for c in per_call:
            d = [(e - s) / 1e6 for t, n, s, e in c if t == tag and n == name and s >= -1_000_000]
            if d:
                vals.append(sum(d))
        durations[label] = round(statistics.median(vals), 2) if vals else None
    return {"calls": len(per_call), "points_ms_p50": points, "durations_ms_p50": durations}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--via", default="mqtt", choices=["mqtt", "file"])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--pause", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ttff-trace"))
    args = ap.parse_args()
    from . import nodes

    out = args.out
    (out / "logs").mkdir(parents=True, exist_ok=True)
    clip = ensure_clip(CLIPS["720p30"], 10, out=out)
    trace = out / f"trace-{args.via}.txt"
    trace.unlink(missing_ok=True)
    os.environ["BENCH_TRACE"] = str(trace)
    fig = nodes.ttff(out / "rig", clip, out / "logs", args.via, args.calls, pause=args.pause)
    print(json.dumps({"ttff": fig, "load": os.getloadavg(), **analyse(trace)}, indent=1))


if __name__ == "__main__":
    main()
