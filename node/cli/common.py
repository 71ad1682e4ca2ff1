"""What every command module shares: --home, the home, the identity, the log level."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from ..home import Home, default_home

if TYPE_CHECKING:
    from ..config import Config
    from ..identity import Identity

F = TypeVar("F", bound=Callable[..., object])


def home_option(f: F) -> F:
    return click.option(
        "--home",
        "home_dir",
        type=click.Path(path_type=Path),
        envvar="MEDIA_NODE_HOME",
        default=None,
        show_envvar=True,
        help="The node's home directory (default: ~/.local/share/media-node; the service uses "
        "/var/lib/media-node).",
    )(f)


def path_option(
    flag: str, dest: str, help: str, *, folder: bool = False, required: bool = False
) -> Callable[[F], F]:
    """An option naming a file (or, `folder`, a directory) as a Path; None when not given."""
    kind = click.Path(dir_okay=folder, file_okay=not folder, path_type=Path)
    return click.option(flag, dest, type=kind, default=None, required=required, help=help)


def get_home(home_dir: Path | None) -> Home:
    return Home((home_dir or default_home()).expanduser())


def existing_home(home_dir: Path | None) -> Home:
    """The home, which `media-node init` must have made: a mistyped --home is an error,
    not an empty peer list or a peers.toml written where no node will read it."""
    from ..errors import NodeError

    home = get_home(home_dir)
    if not home.exists():
        raise NodeError(f"{home.path} has no identity: run `media-node init --home {home.path}` first")
    return home


def load_identity(home: Home) -> Identity:
    from ..identity import Identity

    return Identity.load(home.key_file)


def log_level_from(config: Config) -> None:
    """-v/-vv win; otherwise config [node] log_level (default info) for long-running commands."""
    import logging

    verbose = click.get_current_context().find_root().params.get("verbose", 0)
    if not verbose:
        logging.getLogger().setLevel(config.node.log_level.upper())
    if verbose < 2:  # aioice narrates every candidate pair at INFO
        logging.getLogger("aioice").setLevel(logging.WARNING)


VIDEO_HELP = (
    "Video source: testsrc, file:PATH (.h264, .mp4, .ts), rtsp://..., picamera2, "
    "v4l2:/dev/videoN (default: config media.video, else the board profile's)."
)
AUDIO_HELP = (
    "Audio source: tone, alsa:DEVICE or none (default: config media.audio, else the board profile's)."
)
