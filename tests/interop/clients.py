"""Run one third-party viewer against the camera daemon: its offer goes through the file
drop, the signed reply comes back; an answer is applied, an error link is returned."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .camera import CameraDaemon, Reply

GST_VIEWER = Path(__file__).with_name("gst_viewer.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-gi is installed for the system interpreter


@dataclass
class Outcome:
    reply: Reply
    offer: str
    video_frames: int = 0
    width: int = 0
    height: int = 0
    audio_samples: int = 0
    errors: list = field(default_factory=list)

    def __str__(self) -> str:  # for -s runs: what docs/interop.md reports
        if self.reply.kind != "answer":
            return f"{self.reply.code}: {self.reply.message}"
        plid = [
            ln.split("profile-level-id=")[1][:6]
            for ln in self.reply.sdp.splitlines()
            if "profile-level-id=" in ln
        ]
        return (
            f"answer {plid} bundle={'a=group:BUNDLE' in self.reply.sdp}: {self.video_frames} frames "
            f"{self.width}x{self.height}, {self.audio_samples} audio samples, errors {self.errors}"
        )


def view_with_webrtcbin(
    camera: CameraDaemon, kinds: str = "audio,video", bundle: str = "none", seconds: float = 2.0
) -> Outcome:
    argv = camera.lab.ns["user"].argv(
        SYSTEM_PYTHON, str(GST_VIEWER), "--kinds", kinds, "--bundle", bundle, "--seconds", str(seconds)
    )
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first = proc.stdout.readline()
        if not first:
            raise AssertionError(f"webrtcbin viewer made no offer: {proc.stderr.read()[-2000:]}")
        offer = json.loads(first)["offer"]
        reply = camera.request(offer)
        proc.stdin.write(json.dumps({"answer": reply.sdp}) + "\n")
        proc.stdin.flush()
        last = proc.stdout.readline()
        proc.wait(30)
        if not last:
            raise AssertionError(f"webrtcbin viewer printed no result: {proc.stderr.read()[-2000:]}")
        result = json.loads(last)
        out = Outcome(reply, offer, **result)
        print(f"webrtcbin {kinds} bundle={bundle}: {out}")
        return out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def view_with_browser(
    camera: CameraDaemon,
    browser,
    kinds: str = "audio,video",
    bundle: str = "",
    seconds: float = 2.0,
    timeout: float = 25.0,
    permission: bool = True,
) -> Outcome:
    """`browser` has the page open (tests/browsers.py); its offer is dropped, the answer
    applied, and stats read until `seconds` after the first decoded frame/sample."""
    import time
    from urllib.parse import urlsplit

    if hasattr(browser, "grant"):  # Chromium: what the user's Allow click does
        url = urlsplit(browser.evaluate("location.href"))
        if permission:
            browser.grant(f"{url.scheme}://{url.netloc}")
        else:
            browser.reset_permissions()
    kinds_js = json.dumps(kinds.split(","))
    offer = browser.evaluate(f"makeOffer({kinds_js}, {json.dumps(bundle)}, {json.dumps(permission)})")
    reply = camera.request(offer)
    out = Outcome(reply, offer)
    try:
        if reply.kind != "answer":
            return out
        browser.evaluate(f"applyAnswer({json.dumps(reply.sdp)})")
        deadline = time.monotonic() + timeout
        first = None
        while time.monotonic() < deadline:
            s = browser.evaluate("stats()")
            out.video_frames, out.audio_samples = s["video_frames"], s["audio_samples"]
            out.width, out.height = s["width"], s["height"]
            if s["state"] in ("failed", "closed"):
                out.errors.append(f"connection {s['state']}")
                break
            if first is None and (out.video_frames or out.audio_samples):
                first = time.monotonic()
            if first is not None and time.monotonic() - first >= seconds:
                break
            time.sleep(0.2)
        else:
            out.errors.append("timeout")
        return out
    finally:
        print(f"{type(browser).__name__} {kinds} bundle={bundle or 'default'}: {out}")
        browser.evaluate("closePc()")
