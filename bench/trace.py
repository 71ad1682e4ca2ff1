"""A per-stage timing trace of calls (BENCH_TRACE=FILE in a bench.probe process).

Wraps named functions of the call path (sync or async) and appends one line per call
of them to FILE: `name start_ns end_ns` on CLOCK_MONOTONIC, so the daemon's and the
viewer's lines line up on one time axis. Only installed when asked; `bench.ttff_trace.analyse`
turns the lines of both processes into per-call stage durations."""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import threading
import time
from pathlib import Path

# (module, attribute path): what the daemon and the viewer run for one call
DAEMON = [
    ("node.transports.mqtt.requests", "MqttRequests.serve"),
    ("node.transports.filedrop.handling", "FileHandling.process"),
    ("node.transports.filedrop.watcher", "FileDropWatcher._notice"),
    ("node.calls.manager", "CallManager.handle_link"),
    ("node.transports.filedrop.folders", "ReplySlot.commit"),
    ("node.calls.manager", "CallManager.policy"),
    ("node.calls.manager", "CallManager.sign"),
    ("node.calls.serve", "filter_incoming_sdp"),
    ("node.calls.serve", "plan_for"),
    ("node.calls.serve", "apply_offer"),
    ("node.calls.serve", "check_outgoing_sdp"),
    ("node.links.link", "LinkOpener.open"),
    ("node.media.publisher", "MediaPublisher.attach"),
    ("node.media.fanout", "KeyframeLimiter.__call__"),
    ("node.media.rtploop", "packetize"),
    ("node.media.track", "EncodedVideoTrack.next_payloads"),
    ("aiortc.rtcrtpsender", "RTCRtpSender._handle_rtcp_packet"),
    ("aiortc.rtcpeerconnection", "RTCPeerConnection.createAnswer"),
    ("aiortc.rtcpeerconnection", "RTCPeerConnection.setLocalDescription"),
    ("aiortc.rtcicetransport", "RTCIceGatherer.gather"),
    ("aiortc.rtcicetransport", "RTCIceTransport.start"),
    ("aiortc.rtcdtlstransport", "RTCDtlsTransport.start"),
    ("aiortc.rtcrtpsender", "RTCRtpSender.send"),
    ("aiortc.rtcpeerconnection", "RTCPeerConnection.close"),
    ("node.transports.mqtt.client", "MqttClient.publish"),
    ("node.transports.mqtt.client", "MqttClient._on_message"),
    ("node.transports.mqtt.client", "MqttClient._route_safely"),
]
VIEWER = [
    ("node.calls.manager", "CallManager.sign"),
    ("node.calls.offer", "filter_incoming_sdp"),
    ("node.calls.offer", "check_outgoing_sdp"),
    ("node.links.link", "LinkOpener.open"),
    ("aiortc.rtcrtpreceiver", "RTCRtpReceiver._handle_rtp_packet"),
    ("aiortc.rtcrtpreceiver", "RTCRtpReceiver._send_rtcp_nack"),
    ("aiortc.rtcrtpreceiver", "RTCRtpReceiver._send_rtcp_pli"),
    ("aiortc.rtcpeerconnection", "RTCPeerConnection.createOffer"),
    ("aiortc.rtcpeerconnection", "RTCPeerConnection.setLocalDescription"),
    ("aiortc.rtcpeerconnection", "RTCPeerConnection.setRemoteDescription"),
    ("aiortc.rtcicetransport", "RTCIceTransport.start"),
    ("aiortc.rtcdtlstransport", "RTCDtlsTransport.start"),
    ("aiortc.rtcpeerconnection", "RTCPeerConnection.close"),
    ("node.transports.mqtt.client", "MqttClient.publish"),
    ("node.transports.mqtt.client", "MqttClient._on_message"),
    ("node.transports.mqtt.client", "MqttClient._route_safely"),
]


class Trace:
    def __init__(self, path: str):
        self._f = open(path, "a", buffering=1)  # open for the process's life
        self._lock = threading.Lock()
        self.tag = "d"

    def add(self, name: str, start: int, end: int) -> None:
        with self._lock:
            self._f.write(f"{self.tag} {name} {start} {end}\n")

    def mark(self, name: str) -> None:
        t = time.monotonic_ns()
        self.add(name, t, t)


def _wrap(trace: Trace, name: str, fn):
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*a, **k):
            t = time.monotonic_ns()
            try:
                return await fn(*a, **k)
            finally:
                trace.add(name, t, time.monotonic_ns())

        return awrapper

    @functools.wraps(fn)
    def wrapper(*a, **k):
        t = time.monotonic_ns()
        try:
            return fn(*a, **k)
        finally:
            trace.add(name, t, time.monotonic_ns())

    return wrapper


def install(role: str) -> Trace | None:
    path = os.environ.get("BENCH_TRACE")
    if not path:
        return None
    trace = Trace(path)
    trace.tag = "d" if role == "node" else "v"
    for module, attr in DAEMON if role == "node" else VIEWER:
        mod = importlib.import_module(module)
        *owners, last = attr.split(".")
        obj = mod
        for o in owners:
            obj = getattr(obj, o)
        setattr(obj, last, _wrap(trace, attr.split(".")[-1] if not owners else attr, getattr(obj, last)))
    return trace


def read(path: Path) -> list[tuple[str, str, int, int]]:
    out = []
    for line in path.read_text().splitlines():
        tag, name, s, e = line.split()
        out.append((tag, name, int(s), int(e)))
    return out
