"""`profile list|show` and `doctor`: board profiles (node/profiles.py) and what this
machine is missing (node/doctor.py)."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import load_config
from .common import Parser, command, default_text, echo, get_home, group, home_option, positive_float


def profile_group(parser: Parser) -> None:
    commands = {
        "list": (run_list, "List the shipped board profiles."),
        "show": (run_show, "Show a board profile (auto: the one matching this machine)."),
    }
    description = "Board profiles (firmware_config/): video source, encoder, bounds, audio, config.txt."
    show = group(parser, description, commands)["show"]
    home_option(show)
    show.add_argument("name", nargs="?", default="auto", metavar="NAME", help=default_text("auto").strip())
    show.add_argument(
        "--json", dest="as_json", action="store_true", help="Machine-readable output (Ansible reads this)."
    )
    show.add_argument("--config-txt", action="store_true", help="Print only the Pi config.txt fragment.")


def run_list(args: argparse.Namespace) -> None:
    """List the shipped board profiles."""
    from ..profiles import load_profiles

    for p in load_profiles().values():
        echo(f"{p.name}\t{'hardware' if p.video.hardware else 'software'}\t{p.title}")


def run_show(args: argparse.Namespace) -> None:
    """Show profile NAME, or with `auto` the one matching this machine and its config."""
    from ..profiles import Machine, match_profile

    config = load_config(get_home(args.home_dir).config_file)
    video = config.media.video
    name: str = args.name
    if name == "auto":
        name = config.media.profile
    match = match_profile(Machine.probe(), name, video)
    if args.config_txt:
        echo(match.profile.config_txt)
    elif args.as_json:
        echo(json.dumps({**match.profile.to_json(), "reason": match.reason}, indent=2))
    else:
        p = match.profile
        echo(f"{p.name}: {p.title} ({match.reason})")
        echo(f"video: {p.video.source or '(set media.video)'} via {p.video.encoder}")
        echo(f"  {'hardware' if p.video.hardware else 'software'}: {p.video.why}")
        echo(
            f"  {p.video.width}x{p.video.height}@{p.video.fps}, {p.video.bitrate} bit/s "
            f"[{p.video.min_bitrate}..{p.video.max_bitrate}], I-period {p.video.iperiod}"
        )
        echo(f"audio: {p.audio.source} ({p.audio.why})")
        echo(f"speaker (talkback, set media.speaker to use it): {p.audio.speaker}")
        echo(f"doorbell: {p.doorbell.gpio or '(set doorbell.gpio)'} ({p.doorbell.why})")
        for key, value in p.sysctl.items():
            echo(f"sysctl {key} = {value}")


def doctor(parser: Parser) -> None:
    command(parser, run_doctor)
    home_option(parser)
    parser.add_argument("--json", dest="as_json", action="store_true", help="Machine-readable output.")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=3.0,
        metavar="SECONDS",
        help="Seconds each network check (overlay, broker, RTSP camera) may take, above 0."
        + default_text(3.0),
    )


def run_doctor(args: argparse.Namespace) -> None:
    """Which board profile matches this machine, and what is missing (camera, encoder,
    ALSA device, config.txt, overlay, broker, key permissions), with the fix for each.
    Exits 1 when a required piece is missing."""
    from ..doctor import diagnose

    home = get_home(args.home_dir)
    report = diagnose(home, load_config(home.config_file), timeout=args.timeout)
    echo(json.dumps(report.to_json(), indent=2) if args.as_json else report.render())
    if not report.ok:
        sys.exit(1)
