"""A stock GStreamer webrtcbin viewer (run with the system python3 and python3-gi).

Stock settings: webrtcbin's own RSA certificate, no STUN server, the bundle policy
given (`none` is webrtcbin's default), recvonly transceivers for the kinds asked, and
what docs/interop.md tells a webrtcbin user to set: H.264 caps with
packetization-mode=1 and the profiles its decoder (avdec_h264) handles.

Protocol (one JSON object per line): prints {"offer": SDP} once ICE gathering is
complete, reads {"answer": SDP} from stdin, decodes for --seconds after the first
decoded buffer, prints {"video_frames", "width", "height", "audio_samples", "errors"}."""

from __future__ import annotations

import argparse
import json
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

H264_PROFILES = {102: "42e01f", 104: "4d0032", 106: "640032"}
AUDIO_CAPS = "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111"


def video_caps() -> Gst.Caps:
    caps = Gst.Caps.new_empty()
    for pt, plid in H264_PROFILES.items():
        caps.append(
            Gst.Caps.from_string(
                "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,"
                f"payload={pt},packetization-mode=(string)1,profile-level-id=(string){plid},"
                "level-asymmetry-allowed=(string)1"
            )
        )
    return caps


class Viewer:
    def __init__(self, kinds: list[str], bundle: str, seconds: float, timeout: float):
        self.kinds, self.seconds = kinds, seconds
        self.video_frames = 0
        self.audio_samples = 0
        self.width = self.height = 0
        self.errors: list[str] = []
        self.first_at: float | None = None
        self.loop = GLib.MainLoop()
        self.pipe = Gst.Pipeline.new("viewer")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", bundle)
        self.pipe.add(self.webrtc)
        self.webrtc.connect("on-negotiation-needed", self._on_negotiation_needed)
        self.webrtc.connect("pad-added", self._on_pad)
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        for kind in kinds:
            caps = video_caps() if kind == "video" else Gst.Caps.from_string(AUDIO_CAPS)
            self.webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_error)
        bus.connect("message::warning", self._on_error)
        self.offer_sent = False
        GLib.timeout_add(int(timeout * 1000), self._give_up)

    # --- signalling ------------------------------------------------------------------

    def _on_negotiation_needed(self, element) -> None:
        promise = Gst.Promise.new_with_change_func(self._on_offer, element, None)
        element.emit("create-offer", None, promise)

    def _on_offer(self, promise, element, _) -> None:
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        if offer is None:
            self.errors.append(f"create-offer failed: {reply.to_string()}")
            self.loop.quit()
            return
        element.emit("set-local-description", offer, Gst.Promise.new())

    def _on_gathering(self, element, _pspec) -> None:
        state = element.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.offer_sent:
            self.offer_sent = True
            sdp = element.get_property("local-description").sdp.as_text()
            print(json.dumps({"offer": sdp}), flush=True)
            threading.Thread(target=self._read_answer, daemon=True).start()

    def _read_answer(self) -> None:
        line = sys.stdin.readline()
        GLib.idle_add(self._apply_answer, json.loads(line)["answer"] if line else "")

    def _apply_answer(self, text: str) -> bool:
        if not text:
            self.errors.append("no answer")
            self.loop.quit()
            return False
        _, msg = GstSdp.SDPMessage.new_from_text(text)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        return False

    # --- media -------------------------------------------------------------------------

    def _on_pad(self, element, pad) -> None:
        if pad.direction != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps()
        media = caps.get_structure(0).get_string("media")
        if media == "video":
            desc = "rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! fakesink name=vsink sync=false"
        else:
            desc = (
                "rtpopusdepay ! opusdec ! audioconvert ! audio/x-raw,format=S16LE,channels=1 "
                "! fakesink name=asink sync=false"
            )
        branch = Gst.parse_bin_from_description(desc, True)
        self.pipe.add(branch)
        branch.sync_state_with_parent()
        pad.link(branch.get_static_pad("sink"))
        sink = branch.get_by_name("vsink" if media == "video" else "asink")
        sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self._count, media)

    def _count(self, pad, info, media) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        if media == "video":
            self.video_frames += 1
            if not self.width:
                s = pad.get_current_caps().get_structure(0)
                self.width, self.height = s.get_int("width")[1], s.get_int("height")[1]
        else:
            self.audio_samples += buf.get_size() // 2
        if self.first_at is None:
            self.first_at = GLib.get_monotonic_time() / 1e6
            GLib.timeout_add(int(self.seconds * 1000), self._done)
        return Gst.PadProbeReturn.OK

    def _on_error(self, _bus, message) -> None:
        if message.type == Gst.MessageType.ERROR:
            err, _ = message.parse_error()
        else:
            err, _ = message.parse_warning()
        self.errors.append(f"{message.src.get_name()}: {err.message}")

    def _done(self) -> bool:
        self.loop.quit()
        return False

    def _give_up(self) -> bool:
        self.errors.append("timeout")
        self.loop.quit()
        return False

    def run(self) -> dict:
        self.pipe.set_state(Gst.State.PLAYING)
        self.loop.run()
        result = {
            "video_frames": self.video_frames,
            "width": self.width,
            "height": self.height,
            "audio_samples": self.audio_samples,
            "errors": self.errors,
        }
        self.pipe.set_state(Gst.State.NULL)
        return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--kinds", default="audio,video")
    p.add_argument("--bundle", default="none", choices=["none", "max-bundle", "max-compat", "balanced"])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--timeout", type=float, default=25.0)
    args = p.parse_args()
    Gst.init(None)
    viewer = Viewer(args.kinds.split(","), args.bundle, args.seconds, args.timeout)
    print(json.dumps(viewer.run()), flush=True)


if __name__ == "__main__":
    main()
