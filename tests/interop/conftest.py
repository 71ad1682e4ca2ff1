"""The interop lab (camera + user namespaces), cached 1080p clips, and one camera daemon
per source, shared by every client test of that source."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_root  # tests/conftest.py

from .camera import CameraDaemon
from .lab import UserLab

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "interop"


@pytest.fixture(scope="session")
def user_lab():
    require_root("the interop lab (network namespaces)")
    lab = UserLab()
    try:
        yield lab.setup()
    finally:
        lab.teardown()


def clip(profile: str) -> Path:
    """A 2 s 1080p30 H.264 clip of `profile` (main|high), no B-frames, encoded once.
    (Not ultrafast: without CABAC/8x8 transforms x264 signals Constrained Baseline.)"""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{profile}-1080p.mp4"
    if not path.exists():
        ffmpeg = shutil.which("ffmpeg")
        assert ffmpeg, "ffmpeg is needed for the 1080p fixtures (apt-get install ffmpeg)"
        tmp = path.with_suffix(".part.mp4")
        subprocess.run(
            [
                ffmpeg,
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30",
                "-t",
                "2",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-profile:v",
                profile,
                "-level",
                "4.0",
                "-bf",
                "0",
                "-g",
                "30",
                "-b:v",
                "1500k",
                "-pix_fmt",
                "yuv420p",
                str(tmp),
            ],
            check=True,
            timeout=120,
        )
        tmp.rename(path)
    return path


def _camera(user_lab, tmp_path_factory, name: str, video: str, size):
    cam = CameraDaemon(user_lab, tmp_path_factory.mktemp(name), video, size=size)
    try:
        yield cam.start()
    finally:
        cam.stop()


@pytest.fixture(scope="session")
def testsrc_camera(user_lab, tmp_path_factory):
    yield from _camera(user_lab, tmp_path_factory, "testsrc", "testsrc", (640, 480))


@pytest.fixture(scope="session")
def high_camera(user_lab, tmp_path_factory):
    yield from _camera(user_lab, tmp_path_factory, "high", f"file:{clip('high')}", (1920, 1080))


@pytest.fixture(scope="session")
def main_camera(user_lab, tmp_path_factory):
    yield from _camera(user_lab, tmp_path_factory, "main", f"file:{clip('main')}", (1920, 1080))


WEB = Path(__file__).with_name("web")


@pytest.fixture(scope="session")
def page_url(user_lab):
    """tests/interop/web served on http://127.0.0.1 inside the user namespace (a page
    from localhost: Chromium then gives real host candidates, not mDNS names)."""
    port = 8765
    proc = subprocess.Popen(
        user_lab.ns["user"].argv(
            "/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory", str(WEB)
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}/viewer.html"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def chromium(user_lab, page_url, tmp_path_factory):
    from browsers import Chromium

    # A microphone (this machine has no sound card). The user's "Allow" click is
    # Chromium.grant(); not --use-fake-ui-for-media-stream, which also lifts the
    # candidate restrictions for pages that never asked.
    flags = ["--use-fake-device-for-media-stream"]
    with Chromium(tmp_path_factory.mktemp("chromium"), user_lab.ns["user"].argv(), flags) as browser:
        deadline = 20
        for _ in range(deadline * 10):  # the server may still be binding
            try:
                browser.open(page_url)
                if browser.evaluate("typeof makeOffer") == "function":
                    break
            except Exception:
                pass
            import time

            time.sleep(0.1)
        yield browser
