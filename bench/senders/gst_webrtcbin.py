"""GStreamer webrtcbin sending the clip by passthrough, in its own process, run with the
system Python (/usr/bin/python3 has python3-gi; the venv does not).

    /usr/bin/python3 -m bench.senders.gst_webrtcbin CLIP.ts --pem EC.pem [--au-log F]

Pipeline: filesrc ! tsdemux ! h264parse ! identity sync=true
(real-time pacing) ! rtph264pay ! webrtcbin, transceiver send-only, one ICE candidate on
127.0.0.1, no STUN, no TCP. Workarounds for GStreamer 1.22 + python3-gi 3.42:
- reading `ice-agent` drops a reference webrtcbin still owns: take one extra ref;
- keep the promise reply alive while its offer is used;
- aiortc only accepts ECDSA DTLS certificates: give dtlssrtpdec an ECDSA P-256 PEM and
  put that certificate's fingerprint in the offer (webrtcbin 1.22 advertises another);
- MPEG-TS input: raw .h264 through h264parse has no PTS in 1.22."""

from __future__ import annotations

import argparse
import ctypes
import re
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

from ..au import AuLog  # noqa: E402
from ..wire import emit, read_line  # noqa: E402

# aiortc packs at most 1300 bytes of payload per RTP packet; give rtph264pay the same.
MTU = 1300 + 12


def _gobject_ref(obj) -> None:
    getptr = ctypes.pythonapi.PyCapsule_GetPointer
    getptr.restype = ctypes.c_void_p
    getptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
    gobject = ctypes.CDLL("libgobject-2.0.so.0")
    gobject.g_object_ref.argtypes = [ctypes.c_void_p]
    gobject.g_object_ref.restype = ctypes.c_void_p
    gobject.g_object_ref(getptr(obj.__gpointer__, None))


def fingerprint(pem_path: str) -> str:
    import base64
    import hashlib

    text = open(pem_path).read()
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    if m is None:
        raise ValueError(f"no certificate in {pem_path}")
    der = base64.b64decode("".join(m.group(1).split()))
    d = hashlib.sha256(der).hexdigest().upper()
    return ":".join(d[i : i + 2] for i in range(0, len(d), 2))


class Sender:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.pem = open(args.pem).read()
        self.fp = fingerprint(args.pem)
        self.log = AuLog(args.au_log) if args.au_log else None
        self.candidates: list[str] = []
        self.offer_sent = False
        desc = (
            f"filesrc location={args.clip} ! tsdemux ! h264parse config-interval=-1 ! "
            "video/x-h264,stream-format=byte-stream,alignment=au ! identity sync=true ! "
            f"rtph264pay name=pay config-interval=-1 pt=96 aggregate-mode=zero-latency mtu={MTU} ! "
            "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
            "packetization-mode=(string)1 ! "
            "webrtcbin name=wb bundle-policy=max-bundle"
        )
        self.pipe = Gst.parse_launch(desc)
        self.wb = self.pipe.get_by_name("wb")
        self.pipe.connect("deep-element-added", self._element_added)
        self.wb.connect("on-negotiation-needed", self._negotiate)
        self.wb.connect("on-ice-candidate", self._candidate)
        self.wb.connect("notify::ice-gathering-state", self._gathering)
        self.wb.connect("notify::connection-state", self._connection)
        if self.log:
            pad = self.pipe.get_by_name("pay").get_static_pad("sink")
            pad.add_probe(Gst.PadProbeType.BUFFER, self._probe)
        ice = self.wb.get_property("ice-agent")
        _gobject_ref(ice)  # workaround 1
        ice.emit("add-local-ip-address", "127.0.0.1")
        ice.set_property("ice-tcp", False)
        self.ice = ice

    def _element_added(self, bin_, sub, element):
        factory = element.get_factory()
        if factory and factory.get_name() in ("dtlssrtpdec", "dtlsdec"):
            element.set_property("pem", self.pem)

    def _probe(self, pad, info):
        buf = info.get_buffer()
        ok, m = buf.map(Gst.MapFlags.READ)
        if ok and self.log is not None:
            self.log.add(bytes(m.data), time.monotonic_ns())
            buf.unmap(m)
        return Gst.PadProbeReturn.OK

    def _negotiate(self, wb):
        tr = wb.emit("get-transceiver", 0)
        if tr:
            tr.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        promise = Gst.Promise.new_with_change_func(self._offer_created, None)
        wb.emit("create-offer", None, promise)

    def _offer_created(self, promise, _):
        reply = promise.get_reply()  # workaround 2: keep `reply` alive
        offer = reply.get_value("offer")
        self.wb.emit("set-local-description", offer, None)

    def _candidate(self, wb, mline, cand):
        self.candidates.append(cand)

    def _gathering(self, wb, _):
        if wb.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(self._send_offer)

    def _send_offer(self):
        if self.offer_sent:
            return False
        self.offer_sent = True
        sdp = self.wb.get_property("local-description").sdp.as_text()
        sdp = re.sub(r"a=fingerprint:sha-256 [0-9A-Fa-f:]+", f"a=fingerprint:sha-256 {self.fp}", sdp)
        if "a=candidate" not in sdp:
            extra = "".join(f"a={c}\r\n" if not c.startswith("a=") else c + "\r\n" for c in self.candidates)
            sdp = sdp.rstrip("\r\n") + "\r\n" + extra
        emit({"type": "offer", "sdp": sdp})
        threading.Thread(target=self._read_answer, daemon=True).start()
        return False

    def _read_answer(self):
        answer = read_line()
        if not answer:
            GLib.idle_add(self.loop.quit)
            return
        GLib.idle_add(self._set_answer, answer["sdp"])
        sys.stdin.readline()  # until the harness says stop
        GLib.idle_add(self.loop.quit)

    def _set_answer(self, sdp_text):
        _, msg = GstSdp.SDPMessage.new_from_text(sdp_text)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.wb.emit("set-remote-description", answer, None)
        return False

    def _connection(self, wb, _):
        state = wb.get_property("connection-state")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            emit({"type": "event", "name": "connected", "t_ns": time.monotonic_ns()})

    def _fail(self, message: str) -> None:
        emit({"type": "error", "message": message})
        self.loop.quit()

    def run(self):
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect(
            "message::error",
            lambda b, m: self._fail(str(m.parse_error())),
        )
        self.pipe.set_state(Gst.State.PLAYING)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        if self.log:
            self.log.close()
        emit({"type": "result"})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("--pem", required=True, help="ECDSA P-256 certificate + key (PEM)")
    ap.add_argument("--au-log", default="")
    args = ap.parse_args(argv)
    Gst.init(None)
    Sender(args).run()


if __name__ == "__main__":
    main()
