"""`view`: watch a peer's camera from the command line (node/viewer.py)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO, cast

from ..errors import NodeError
from .common import Parser, command, echo, get_home, home_option, path_type


def view(parser: Parser) -> None:
    command(parser, run_view_command)
    home_option(parser)
    parser.add_argument("peer", metavar="PEER")
    parser.add_argument(
        "--via",
        required=True,
        metavar="file:DIR|mqtt|manual",
        help="file:DIR: drop the request into DIR/inbox and wait for DIR/outbox (DIR is the "
        "peer's home or drop folder); mqtt: through the broker in this home's [mqtt] config; "
        "manual: print the request, paste the reply.",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="Seconds to receive (default 10; with --play or --record -: an hour, or until the "
        "player closes).",
    )
    parser.add_argument(
        "--record",
        type=path_type(allow_dash=True),
        default=None,
        metavar="FILE",
        help="Record the video as it arrived (H.264, not re-encoded) to FILE (.mkv, .mp4, .ts); "
        "`-`: live MPEG-TS (H.264 as it arrived + AAC audio) on stdout, e.g. `| ffplay -`.",
    )
    parser.add_argument(
        "--play",
        action="store_true",
        help="Play live in the first of mpv, ffplay, gst-play-1.0 found on PATH.",
    )
    parser.add_argument(
        "--talk",
        default=None,
        metavar="tone|alsa:DEVICE|file:PATH.wav",
        help="Also send this audio to PEER's speaker (PEER must allow this node 'talk').",
    )
    parser.add_argument("--json", dest="as_json", action="store_true", help="Print only the JSON summary.")


def run_view_command(args: argparse.Namespace) -> None:
    """Watch PEER's camera and microphone: a signed view-request, its signed answer,
    then media over the overlay for --seconds. Prints a JSON summary (ttff_ms,
    video_frames, audio_frames, kbps, local_address, remote_address, record); exits 1
    if no video arrived. With `--record -` the summary goes to stderr (stdout is the
    stream)."""
    import asyncio

    from ..transports.base import client_transport
    from ..viewer import format_summary, start_player
    from ..viewer import view as run_view

    home = get_home(args.home_dir)
    peer: str = args.peer
    via: str = args.via
    seconds: float | None = args.seconds
    record: Path | None = args.record
    play: bool = args.play
    talk: str | None = args.talk
    live = play or str(record) == "-"
    if play and record is not None:
        raise NodeError("--play and --record cannot be combined (pipe `--record -` into a player instead)")
    seconds = seconds if seconds is not None else (3600.0 if live else 10.0)
    if live and via == "manual":
        raise NodeError("--via manual prints its request on stdout: use file:DIR or mqtt with a live pipe")
    if seconds <= 0:
        raise NodeError("--seconds must be positive")
    if talk:
        from ..media.select import parse_talk

        parse_talk(talk)
    transport = client_transport(via, home)
    player = start_player() if play else None
    target: Path | BinaryIO | None = record
    if player is not None:
        target = cast(BinaryIO, player.stdin)
    elif live:
        target = sys.stdout.buffer
    until = (lambda: player.poll() is not None) if player is not None else None
    try:
        summary = asyncio.run(run_view(home, peer, transport, seconds, target, talk=talk, until=until))
    finally:
        if player is not None:
            _stop_player(player)
    summary["via"] = via if via in ("manual", "mqtt") else "file"
    if not args.as_json:
        echo(format_summary(summary), err=True)
    echo(json.dumps(summary), err=live)
    if not summary["ok"]:
        sys.exit(1)


def _stop_player(player: subprocess.Popen[bytes]) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        if player.stdin is not None:
            player.stdin.close()
    try:
        player.wait(5)
    except subprocess.TimeoutExpired:
        player.terminate()
        player.wait(5)
