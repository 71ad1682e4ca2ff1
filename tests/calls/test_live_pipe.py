"""The live pipe for players: `media-node view --record -` writes MPEG-TS (the H.264 as
it arrived, plus the audio as AAC) to stdout, and `--play` feeds the first player found
on PATH; ffprobe reads what came out. The camera is a real `media-node run` daemon."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from . import test_cli_calls as test_cli
from .test_cli_calls import CLI, ROOT, _configure, _start_daemon

nodes, procs = test_cli.nodes, test_cli.procs  # the same fixtures as the CLI tests


def _probe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=codec_name,codec_type,width,height,nb_read_packets:format=format_name",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def _view(viewer, camera, *extra: str, env: dict | None = None, stdout=subprocess.PIPE):
    return subprocess.run(
        [
            *CLI,
            "view",
            "camera",
            "--home",
            str(viewer.home.path),
            "--via",
            f"file:{camera.home.path}",
            "--seconds",
            "3",
            *extra,
        ],
        check=False,
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=120,
        env=env,
    )


def _check_stream(path: Path) -> None:
    probed = _probe(path)
    assert probed["format"]["format_name"] == "mpegts", probed
    streams = {s["codec_type"]: s for s in probed["streams"]}
    video, audio = streams["video"], streams["audio"]
    assert video["codec_name"] == "h264" and (video["width"], video["height"]) == (640, 480), video
    assert int(video["nb_read_packets"]) > 30, video
    assert audio["codec_name"] == "aac" and int(audio["nb_read_packets"]) > 30, audio


def test_record_dash_writes_mpegts_to_stdout(nodes, procs, tmp_path):
    camera, viewer = nodes
    _configure(camera, "127.0.0.1", media=True)
    _start_daemon(procs, camera.home.path, tmp_path / "daemon.log")
    out = tmp_path / "stdout.ts"
    with open(out, "wb") as sink:
        result = _view(viewer, camera, "--record", "-", stdout=sink)
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stderr.decode().strip().splitlines()[-1])  # stdout is the stream
    assert summary["video_frames"] > 30, summary
    _check_stream(out)


def test_play_uses_the_first_player_found(nodes, procs, tmp_path):
    camera, viewer = nodes
    _configure(camera, "127.0.0.1", media=True)
    _start_daemon(procs, camera.home.path, tmp_path / "daemon.log")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    got = tmp_path / "played.ts"
    # a stand-in "ffplay" that keeps what it is fed (mpv is not installed here)
    player = bin_dir / "ffplay"
    player.write_text(f"#!/bin/sh\nexec cat > {got}\n")
    player.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")  # ours comes before any system ffplay
    result = _view(viewer, camera, "--play", env=env)
    assert result.returncode == 0, result.stderr.decode()
    _check_stream(got)


def test_play_without_a_player_says_what_to_install(nodes, tmp_path):
    camera, viewer = nodes
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _view(viewer, camera, "--play", env=dict(os.environ, PATH=str(empty)))
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "mpv" in err and "ffplay" in err and "gst-play-1.0" in err, err
    assert "Traceback" not in err
