"""Real browsers watch a real camera through `media-node web` (tests/web/lab.py: the
user's namespace has a LAN default route and a separate overlay link; the camera is
reached only over the overlay). The browsers get no media permission, no WebRTC flag,
no overlay and no key: they open http://127.0.0.1:PORT/?token=... and that is all.

- Chromium (DevTools protocol): video decoded at the source's size, audio playing, the
  live stats shown; push-to-talk with its fake microphone reaches the camera's speaker
  (an ALSA `file` device). A screenshot of the page is saved (README's picture).
- Firefox ESR (WebDriver BiDi): offline it has no H.264, so the page says exactly that
  instead of a black video; audio still plays, and push-to-talk still reaches the speaker.

Both share one lab and one camera; frames and samples are counted, never timed."""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from pathlib import Path

import pytest
from conftest import require_root

from .lab import WebLab

pytestmark = pytest.mark.timeout(240)

SIZE = (320, 240)  # the clip's size: what the page must decode


@pytest.fixture(scope="module")
def lab(tmp_path_factory, clip_dir):
    require_root("the web viewer lab (network namespaces)")
    lab = WebLab(tmp_path_factory.mktemp("weblab"), video=f"file:{clip_dir / 'clip.h264'}")
    try:
        lab.setup()
        lab.start_camera()
        lab.start_web()
        yield lab
    finally:
        lab.teardown()


def _wait(browser, expression: str, timeout: float = 30, what: str = ""):
    """Poll a page expression until it is truthy; its last value either way."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = browser.evaluate(expression)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what or expression} not true within {timeout} s (last: {value!r})")


def _click(browser, selector: str) -> None:
    """A real mouse click (a user gesture, which autoplay with sound needs)."""
    box = browser.evaluate(
        f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
        " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
    )
    for kind in ("mousePressed", "mouseReleased"):
        browser.command(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
        )


def _speaker_bytes(lab: WebLab) -> int:
    return lab.speaker.stat().st_size if lab.speaker.exists() else 0


def _non_silent(pcm: bytes) -> int:
    values = struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2])
    return max((abs(v) for v in values), default=0)


def _talk(browser, lab: WebLab) -> bytes:
    """Hold push-to-talk (the button's own handler), wait for a second of audio at the
    camera's speaker, release; what the speaker got meanwhile."""
    before = _speaker_bytes(lab)
    browser.evaluate("mn.startTalking()")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _speaker_bytes(lab) - before < 48000 * 2:
        time.sleep(0.2)
    browser.evaluate("mn.stopTalking()")
    return lab.speaker.read_bytes()[before:] if lab.speaker.exists() else b""


@pytest.fixture(scope="module")
def chromium(lab, tmp_path_factory):
    from browsers import Chromium

    # The fake microphone for push-to-talk, and its permission prompt answered "Allow"
    # when the button asks (getUserMedia); the view itself runs before any permission.
    flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    with Chromium(tmp_path_factory.mktemp("chromium"), lab.ns["user"].argv(), flags) as browser:
        yield browser


def test_chromium_watches_the_camera_live_and_talks(lab, chromium):
    chromium.command(  # a laptop-sized window (the screenshot shows the whole page)
        "Emulation.setDeviceMetricsOverride",
        {"width": 1000, "height": 940, "deviceScaleFactor": 1, "mobile": False},
    )
    chromium.open(lab.url + "&view=camera")
    quality = _wait(
        chromium,
        "(() => { const q = mn.quality(); return q.total >= 30 ? q : null; })()",
        what="30 decoded frames",
    )
    assert (quality["width"], quality["height"]) == SIZE, quality
    stats = _wait(
        chromium,
        "mn.collectStats().then(s => s && s.audio && s.audio.samples > 48000 ? s : null)",
        what="a second of audio samples",
    )
    assert stats["video"]["codec"].lower() == "video/h264", stats
    if chromium.evaluate("mn.quality().muted"):  # autoplay policy: sound waits for a click
        _click(chromium, "#mute")
    assert chromium.evaluate("mn.quality().muted") is False
    stats = _wait(
        chromium,
        "mn.collectStats().then(s => s && s.audio && s.audio.energy > 0 ? s : null)",
        what="audio energy (the camera's tone, not silence)",
    )
    assert chromium.evaluate("mn.state.talk.granted") is True
    # the stats table the user sees, filled from getStats and the camera leg
    _wait(
        chromium,
        "mn.state.stats.camera && document.querySelector('#stats').textContent.includes('kbit/s')",
        what="the stats shown",
    )
    shot = os.environ.get("MEDIA_NODE_SCREENSHOT")  # README's picture: set it to refresh docs/
    png = base64.b64decode(chromium.command("Page.captureScreenshot", {"format": "png"})["data"])
    assert png.startswith(b"\x89PNG")
    if shot:
        Path(shot).write_bytes(png)
    # snapshot: a PNG of the current frame, made by the page itself
    url = chromium.evaluate("mn.snapshot()")
    assert url.startswith("data:image/png;base64,")
    # push-to-talk with Chromium's fake microphone (a beep) reaches the camera's speaker
    pcm = _talk(chromium, lab)
    assert len(pcm) >= 48000 and _non_silent(pcm) > 1000, (len(pcm), _non_silent(pcm))
    chromium.evaluate("mn.closeView()")
    assert "Traceback" not in lab.log("web"), lab.log("web")[-3000:]


def test_chromium_rings_when_the_camera_calls_and_answering_shows_it(lab, chromium):
    """The doorbell: `cmd/call` over mosquitto makes the camera call this node; the open
    page rings, a click on Answer shows the caller live."""
    chromium.open(lab.url)
    _wait(chromium, "mn.state.listening === true", what="the page on the event stream")
    # the camera's retained MQTT status: the list shows it online
    _wait(chromium, "mn.loadPeers().then(p => p[0].online === true)", what="the camera listed online")
    lab.ring("viewer")
    _wait(chromium, "!document.getElementById('ring').hidden", what="the ring on the page")
    assert "camera" in chromium.evaluate("document.getElementById('ring-text').textContent")
    _click(chromium, "#ring-answer")
    quality = _wait(
        chromium,
        "(() => { const q = mn.quality(); return q.total >= 30 ? q : null; })()",
        what="30 decoded frames of the caller",
    )
    assert (quality["width"], quality["height"]) == SIZE, quality
    assert chromium.evaluate("mn.state.talk.granted") is True  # the camera lets it talk back
    chromium.evaluate("mn.closeView()")


@pytest.fixture(scope="module")
def firefox(lab, tmp_path_factory):
    from browsers import Firefox

    prefs = {
        # a fake microphone for push-to-talk (Firefox's own test device), allowed when asked
        "media.navigator.streams.fake": True,
        "media.navigator.permission.disabled": True,
        "media.autoplay.default": 0,
    }
    with Firefox(tmp_path_factory.mktemp("firefox"), netns=lab.ns["user"].name, prefs=prefs) as browser:
        yield browser


def test_firefox_without_h264_is_told_why_and_still_hears_and_talks(lab, firefox):
    firefox.open(lab.url + "&view=camera")
    assert firefox.evaluate("mn.hasH264()") is False  # Debian's Firefox ESR, offline
    message = _wait(firefox, "mn.state.session && mn.message()", what="the session and its message")
    assert "H.264" in message and "OpenH264" in message, message
    stats = _wait(
        firefox,
        "mn.collectStats().then(s => s && s.audio && s.audio.packets > 100 ? s : null)",
        what="100 audio packets",
    )
    assert stats["video"] is None, stats  # no black video: no video at all
    pcm = _talk(firefox, lab)
    assert len(pcm) >= 48000 and _non_silent(pcm) > 1000, (len(pcm), _non_silent(pcm))
    firefox.evaluate("mn.closeView()")
    log = lab.log("camera")
    assert json.dumps("Traceback")[1:-1] not in log, log[-3000:]
