"""`web`: the browser viewer on 127.0.0.1 (node/web/)."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import load_config
from ..errors import NodeError
from .common import get_home, home_option, log_level_from


@click.command(short_help="The browser viewer on 127.0.0.1: watch peers, answer rings.")
@home_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port on 127.0.0.1, 0 = any free one (default: config web.port, 8765).",
)
@click.option(
    "--via",
    default=None,
    metavar="file:DIR|mqtt",
    help="How to reach cameras without their own `via` in peers.toml (default: mqtt when [mqtt] is on).",
)
@click.option("--new-token", is_flag=True, help="Replace the access token (old bookmarks stop working).")
def web(home_dir: Path | None, port: int | None, via: str | None, new_token: bool) -> None:
    """The browser viewer: serve a page on 127.0.0.1 only that lists this node's peers and
    watches one live (video, audio, push-to-talk, snapshot, stats), and rings when a camera
    calls this node. This node relays the media between the page and the camera without
    decoding; only the two nodes' overlay addresses ever leave the machine. Prints the URL
    (with its access token, kept 0600 in the home) and serves until Ctrl-C."""
    import asyncio

    from ..web.run import run_web

    home = get_home(home_dir)
    config = load_config(home.config_file)
    if via is not None and not (via == "mqtt" or (via.startswith("file:") and len(via) > 5)):
        raise NodeError(f"--via {via!r}: use file:DIR or mqtt")
    log_level_from(config)
    asyncio.run(
        run_web(home, config, port=config.web.port if port is None else port, via=via, new_token=new_token)
    )
