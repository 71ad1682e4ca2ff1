"""`web`: the browser viewer on 127.0.0.1 (node/web/)."""

from __future__ import annotations

import argparse

from ..config import load_config
from ..errors import NodeError
from .common import Parser, command, get_home, home_option, int_range, log_level_from


def web(parser: Parser) -> None:
    command(parser, run_web_command)
    home_option(parser)
    parser.add_argument(
        "--port",
        type=int_range(0, 65535),
        default=None,
        metavar="PORT",
        help="Port on 127.0.0.1, 0 to 65535, 0 = any free one (default: config web.port, 8765).",
    )
    parser.add_argument(
        "--via",
        default=None,
        metavar="file:DIR|mqtt",
        help="How to reach cameras without their own `via` in peers.toml (default: mqtt when [mqtt] is on).",
    )
    parser.add_argument(
        "--new-token", action="store_true", help="Replace the access token (old bookmarks stop working)."
    )


def run_web_command(args: argparse.Namespace) -> None:
    """The browser viewer: serve a page on 127.0.0.1 only that lists this node's peers and
    watches one live (video, audio, push-to-talk, snapshot, stats), and rings when a camera
    calls this node. This node relays the media between the page and the camera without
    decoding; only the two nodes' overlay addresses ever leave the machine. Prints the URL
    (with its access token, kept 0600 in the home) and serves until Ctrl-C."""
    import asyncio

    from ..web.run import run_web

    home = get_home(args.home_dir)
    config = load_config(home.config_file)
    via: str | None = args.via
    if via is not None and not (via == "mqtt" or (via.startswith("file:") and len(via) > 5)):
        raise NodeError(f"--via {via!r}: use file:DIR or mqtt")
    log_level_from(config, args.verbose)
    port = config.web.port if args.port is None else args.port
    asyncio.run(run_web(home, config, port=port, via=via, new_token=args.new_token))
