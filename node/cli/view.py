"""`view`: watch a peer's camera from the command line (node/viewer.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO, cast

import click

from ..errors import NodeError
from .common import get_home, home_option


@click.command(short_help="Watch a peer's camera and microphone; prints a JSON summary.")
@home_option
@click.argument("peer")
@click.option(
    "--via",
    required=True,
    metavar="file:DIR|mqtt|manual",
    help="file:DIR: drop the request into DIR/inbox and wait for DIR/outbox (DIR is the "
    "peer's home or drop folder); mqtt: through the broker in this home's [mqtt] config; "
    "manual: print the request, paste the reply.",
)
@click.option(
    "--seconds",
    type=float,
    default=None,
    help="Seconds to receive (default 10; with --play or --record -: an hour, or until the player closes).",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    default=None,
    help="Record the video as it arrived (H.264, not re-encoded) to FILE (.mkv, .mp4, .ts); "
    "`-`: live MPEG-TS (H.264 as it arrived + AAC audio) on stdout, e.g. `| ffplay -`.",
)
@click.option(
    "--play", is_flag=True, help="Play live in the first of mpv, ffplay, gst-play-1.0 found on PATH."
)
@click.option(
    "--talk",
    default=None,
    metavar="tone|alsa:DEVICE|file:PATH.wav",
    help="Also send this audio to PEER's speaker (PEER must allow this node 'talk').",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON summary.")
def view(
    home_dir: Path | None,
    peer: str,
    via: str,
    seconds: float | None,
    record: Path | None,
    play: bool,
    talk: str | None,
    as_json: bool,
) -> None:
    """Watch PEER's camera and microphone: a signed view-request, its signed answer,
    then media over the overlay for --seconds. Prints a JSON summary (ttff_ms,
    video_frames, audio_frames, kbps, local_address, remote_address, record); exits 1
    if no video arrived. With `--record -` the summary goes to stderr (stdout is the
    stream)."""
    import asyncio

    from ..transports.base import client_transport
    from ..viewer import format_summary, start_player
    from ..viewer import view as run_view

    home = get_home(home_dir)
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
    if not as_json:
        click.echo(format_summary(summary), err=True)
    click.echo(json.dumps(summary), err=live)
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
