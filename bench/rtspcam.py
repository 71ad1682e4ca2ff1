"""A stand-in IP camera for the memory figure: gst-rtsp-server on 127.0.0.1 serving a
bench clip (as MP4, looping) through the tests' RTSP server script, so the daemon can
stream from a source that, like a real camera, holds no clip in memory."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from .inputs import Clip
from .session import REPO, SYSTEM_PY

SERVER = REPO / "tests" / "media" / "rtsp_server.py"


class RtspCamera:
    def __init__(self, clip: Clip, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        mp4 = workdir / f"{clip.h264.stem}.mp4"
        if not mp4.exists():
            subprocess.run(
                [
                    *("ffmpeg", "-loglevel", "error", "-y", "-r", str(clip.spec.fps), "-i", str(clip.h264)),
                    *("-c", "copy", "-movflags", "+faststart", str(mp4)),  # moov first: it loops
                ],
                check=True,
                timeout=120,
            )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"rtsp://127.0.0.1:{port}/cam"
        self.proc = subprocess.Popen(
            [SYSTEM_PY, str(SERVER), str(mp4), str(port), "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "READY" not in line:
            self.stop()
            raise RuntimeError(f"the RTSP test server did not start: {line.strip()!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
