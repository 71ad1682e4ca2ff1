"""Figures 1, 3 and 4 for the senders the bench can start by itself: our media path
(node.media publisher in a bench process), aiortc's MediaPlayer paths and GStreamer
webrtcbin. Each run is sender process + receiver process(es), measured side by side
on the same clip within one `media-node bench` run."""

from __future__ import annotations

from pathlib import Path

from .au import read_log
from .inputs import Clip
from .session import SYSTEM_PY, VENV_PY, Peer, ecdsa_pem, receiver, stream_and_measure
from .stats import summary_ms

SENDERS = {
    "node_publisher": "our passthrough (node.media publisher, file: source)",
    "aiortc_passthrough": "aiortc MediaPlayer(decode=False) passthrough",
    "gstreamer_webrtcbin": "GStreamer webrtcbin passthrough (Debian 12 packages)",
    "aiortc_encode": "aiortc default: decode + libx264 re-encode",
}


def sender_peer(
    kind: str, clip: Clip, logdir: Path, out: Path, au_log: Path | None = None, viewers: int = 1
) -> Peer:
    log = ["--au-log", str(au_log)] if au_log else []
    if kind == "node_publisher":
        argv = [
            VENV_PY,
            "-m",
            "bench.senders.node_publisher",
            str(clip.h264),
            "--viewers",
            str(viewers),
            *log,
        ]
    elif kind == "aiortc_passthrough":
        argv = [VENV_PY, "-m", "bench.senders.aiortc_player", "--mode", "passthrough", str(clip.ts), *log]
    elif kind == "aiortc_encode":
        argv = [VENV_PY, "-m", "bench.senders.aiortc_player", "--mode", "encode", str(clip.ts)]
    elif kind == "gstreamer_webrtcbin":
        argv = [
            SYSTEM_PY,
            "-m",
            "bench.senders.gst_webrtcbin",
            str(clip.ts),
            "--pem",
            str(ecdsa_pem(out)),
            *log,
        ]
    else:
        raise ValueError(kind)
    if viewers != 1 and kind != "node_publisher":
        raise ValueError(f"{kind} serves one viewer")
    return Peer(f"{kind}-{clip.spec.label}-{viewers}", argv, logdir)


def sender_cpu(kind: str, clip: Clip, logdir: Path, out: Path, warmup: float, window: float) -> dict:
    sender = sender_peer(kind, clip, logdir, out)
    recv = receiver(f"recv-{kind}-{clip.spec.label}", logdir)
    usage, results = stream_and_measure(sender, recv, warmup, window)
    r = results[0]
    return {
        **usage.to_json(),
        "aus_received": r.get("aus", 0),
        "mbit_received": round(r.get("bytes", 0) * 8 / 1e6, 2),
    }


def latency(
    kind: str, clip: Clip, logdir: Path, out: Path, warmup: float, window: float, node_receiver: bool = True
) -> dict:
    """AU handed over by the source (sender probe) -> same AU complete at the viewer
    (receiver probe), matched by content hash, both on CLOCK_MONOTONIC."""
    tag = f"{kind}-{clip.spec.label}-{'noderecv' if node_receiver else 'aiortcrecv'}"
    s_log, r_log = logdir / f"{tag}.send.au", logdir / f"{tag}.recv.au"
    for p in (s_log, r_log):
        p.unlink(missing_ok=True)
    sender = sender_peer(kind, clip, logdir, out, au_log=s_log)
    recv = receiver(f"recv-{tag}", logdir, au_log=r_log, node_receiver=node_receiver)
    stream_and_measure(sender, recv, warmup, window)
    return match_latency(s_log, r_log)


def match_latency(send_log: Path, recv_log: Path, settle: float = 1.0) -> dict:
    """Steady state only: AUs handed over before `settle` s after the first AU reached
    the viewer are left out (they may have queued behind ICE/DTLS setup)."""
    sent, got = read_log(send_log), read_log(recv_log)
    start = min(got.values()) + settle * 1e9 if got else 0
    deltas = [(got[k] - t) / 1e9 for k, t in sent.items() if k in got and got[k] >= t >= start]
    out = summary_ms(deltas)
    out["sent"] = len(sent)
    out["matched"] = len(deltas)
    return out


def fanout(clip: Clip, viewers: int, logdir: Path, out: Path, warmup: float, window: float) -> dict:
    sender = sender_peer("node_publisher", clip, logdir, out, viewers=viewers)
    recvs = [receiver(f"recv-fan{viewers}-{i}", logdir) for i in range(viewers)]
    usage, results = stream_and_measure(sender, recvs, warmup, window, connect_timeout=60)
    aus = [r.get("aus", 0) for r in results]
    return {**usage.to_json(), "viewers": viewers, "aus_min": min(aus), "aus_max": max(aus)}
