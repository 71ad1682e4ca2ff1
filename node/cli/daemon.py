"""`run`: the daemon (node/service.py)."""

from __future__ import annotations

import argparse

from ..config import load_config
from .common import AUDIO_HELP, VIDEO_HELP, Parser, command, get_home, home_option, log_level_from


def run(parser: Parser) -> None:
    command(parser, run_daemon)
    home_option(parser)
    parser.add_argument("--video", default=None, metavar="SOURCE", help=VIDEO_HELP)
    parser.add_argument("--audio", default=None, metavar="SOURCE", help=AUDIO_HELP)
    parser.add_argument(
        "--speaker",
        default=None,
        metavar="alsa:DEVICE|none",
        help="Where peers allowed 'talk' are heard (default: config media.speaker; none).",
    )


def run_daemon(args: argparse.Namespace) -> None:
    """The daemon: serve view requests (and calls) arriving in the home's inbox/ (file
    drop) until SIGTERM or SIGINT, which end every call cleanly. Overlay, media and
    limits come from the home's config.toml."""
    import asyncio

    from ..media import apply_overrides
    from ..service import run_service

    home = get_home(args.home_dir)
    config = load_config(home.config_file)
    apply_overrides(config.media, video=args.video, audio=args.audio, speaker=args.speaker)
    log_level_from(config, args.verbose)
    asyncio.run(run_service(home, config))
