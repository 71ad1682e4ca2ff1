"""`profile list|show` and `doctor`: board profiles (node/profiles.py) and what this
machine is missing (node/doctor.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..config import load_config
from .common import get_home, home_option


@click.group("profile", short_help="Board profiles: video source, encoder, audio, config.txt.")
def profile_group() -> None:
    """Board profiles (firmware_config/): video source, encoder, bounds, audio, config.txt."""


@profile_group.command("list")
def profile_list() -> None:
    """List the shipped board profiles."""
    from ..profiles import load_profiles

    for p in load_profiles().values():
        click.echo(f"{p.name}\t{'hardware' if p.video.hardware else 'software'}\t{p.title}")


@profile_group.command("show", short_help="Show a board profile (auto: the one matching this machine).")
@home_option
@click.argument("name", default="auto")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (Ansible reads this).")
@click.option("--config-txt", is_flag=True, help="Print only the Pi config.txt fragment.")
def profile_show(home_dir: Path | None, name: str, as_json: bool, config_txt: bool) -> None:
    """Show profile NAME, or with `auto` the one matching this machine and its config."""
    from ..profiles import Machine, match_profile

    config = load_config(get_home(home_dir).config_file)
    video = config.media.video
    if name == "auto":
        name = config.media.profile
    match = match_profile(Machine.probe(), name, video)
    if config_txt:
        click.echo(match.profile.config_txt)
    elif as_json:
        click.echo(json.dumps({**match.profile.to_json(), "reason": match.reason}, indent=2))
    else:
        p = match.profile
        click.echo(f"{p.name}: {p.title} ({match.reason})")
        click.echo(f"video: {p.video.source or '(set media.video)'} via {p.video.encoder}")
        click.echo(f"  {'hardware' if p.video.hardware else 'software'}: {p.video.why}")
        click.echo(
            f"  {p.video.width}x{p.video.height}@{p.video.fps}, {p.video.bitrate} bit/s "
            f"[{p.video.min_bitrate}..{p.video.max_bitrate}], I-period {p.video.iperiod}"
        )
        click.echo(f"audio: {p.audio.source} ({p.audio.why})")
        click.echo(f"speaker (talkback, set media.speaker to use it): {p.audio.speaker}")
        click.echo(f"doorbell: {p.doorbell.gpio or '(set doorbell.gpio)'} ({p.doorbell.why})")
        for key, value in p.sysctl.items():
            click.echo(f"sysctl {key} = {value}")


@click.command(short_help="What this machine is missing to run the node, with each fix.")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=3.0,
    show_default=True,
    help="Seconds each network check (overlay, broker, RTSP camera) may take.",
)
def doctor(home_dir: Path | None, as_json: bool, timeout: float) -> None:
    """Which board profile matches this machine, and what is missing (camera, encoder,
    ALSA device, config.txt, overlay, broker, key permissions), with the fix for each.
    Exits 1 when a required piece is missing."""
    from ..doctor import diagnose

    home = get_home(home_dir)
    report = diagnose(home, load_config(home.config_file), timeout=timeout)
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.render())
    if not report.ok:
        sys.exit(1)
