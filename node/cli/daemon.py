"""`run`: the daemon (node/service.py)."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import load_config
from .common import AUDIO_HELP, VIDEO_HELP, get_home, home_option, log_level_from


@click.command(short_help="The daemon: serve view requests and calls until SIGTERM.")
@home_option
@click.option("--video", default=None, metavar="SOURCE", help=VIDEO_HELP)
@click.option("--audio", default=None, metavar="SOURCE", help=AUDIO_HELP)
@click.option(
    "--speaker",
    default=None,
    metavar="alsa:DEVICE|none",
    help="Where peers allowed 'talk' are heard (default: config media.speaker; none).",
)
def run(home_dir: Path | None, video: str | None, audio: str | None, speaker: str | None) -> None:
    """The daemon: serve view requests (and calls) arriving in the home's inbox/ (file
    drop) until SIGTERM or SIGINT, which end every call cleanly. Overlay, media and
    limits come from the home's config.toml."""
    import asyncio

    from ..media import apply_overrides
    from ..service import run_service

    home = get_home(home_dir)
    config = load_config(home.config_file)
    apply_overrides(config.media, video=video, audio=audio, speaker=speaker)
    log_level_from(config)
    asyncio.run(run_service(home, config))
