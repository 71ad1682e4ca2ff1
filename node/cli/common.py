"""What every command module shares: --home, the home, the identity, the log level, and
the argparse pieces (file and number checks, output) the commands are built from."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..home import ENV_VAR, Home, default_home

if TYPE_CHECKING:
    from ..config import Config
    from ..identity import Identity

# what a command's parser calls: set with parser.set_defaults(run=...)
Handler = Callable[[argparse.Namespace], None]


class Parser(argparse.ArgumentParser):
    """argparse, but an option's value may start with '-' (`--answers -Xb...`, a digest
    is base64url), as a shell user expects and as click took it: the word after an option
    that takes a value is its value unless it is itself one of this command's options."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.option_strings and action.nargs is None:  # one value
            self._value_options = getattr(self, "_value_options", set()) | set(action.option_strings)
        return action

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        takes: set[str] = getattr(self, "_value_options", set())
        glued: list[str] = []
        i = 0
        while i < len(words):
            word = words[i]
            if word == "--":
                glued += words[i:]
                break
            value = words[i + 1] if i + 1 < len(words) else None
            if (
                word in takes
                and word.startswith("--")
                and value is not None
                and value.startswith("-")
                and value not in self._option_string_actions
            ):
                glued.append(f"{word}={value}")
                i += 2
                continue
            glued.append(word)
            i += 1
        return super().parse_known_args(glued, namespace)


def echo(text: str, err: bool = False) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def default_text(value: object) -> str:
    return f" [default: {value}]"


def doc(text: str) -> str:
    """A docstring's text without its indentation (paragraphs re-wrap in the help)."""
    return "\n".join(line.strip() for line in text.strip().splitlines())


class Formatter(argparse.HelpFormatter):
    """Help text as written: each paragraph of a description re-wrapped to the terminal,
    blank lines between paragraphs kept, and an indented block (a command list) verbatim.
    The width is found as shutil.get_terminal_size finds it (COLUMNS, else the terminal,
    else 80) without importing shutil, which argparse would do for every command run."""

    def __init__(self, prog: str) -> None:
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            width = int(columns)
        else:
            stream = sys.__stdout__
            try:
                width = (os.get_terminal_size(stream.fileno()).columns if stream else 0) or 80
            except (ValueError, OSError):
                width = 80
        super().__init__(prog, width=width - 2)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for block in text.strip().split("\n\n"):
            if any(line.startswith("  ") for line in block.splitlines()):
                paragraphs.append(block)
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(block.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                    )
                )
        return "\n\n".join(paragraphs)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # an option's help: `~/.local/share/media-node` is not split at its dash
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def new_parser(prog: str, description: str | None, epilog: str | None = None) -> Parser:
    return Parser(
        prog=prog, description=description, epilog=epilog, formatter_class=Formatter, allow_abbrev=False
    )


def command_list(title: str, summaries: dict[str, str]) -> str:
    """The epilog that lists a group's commands, one line each: name, then its summary."""
    width = max(map(len, summaries)) + 2
    return f"{title}:\n" + "\n".join(f"  {n:<{width}}{s}" for n, s in summaries.items())


def command(parser: Parser, run: Handler) -> None:
    """`parser` runs `run`; its description is `run`'s docstring."""
    parser.description = doc(run.__doc__ or "")
    parser.set_defaults(run=run)


def group(parser: Parser, description: str, commands: Mapping[str, tuple[Handler, str]]) -> dict[str, Parser]:
    """A group of subcommands: name -> (handler, one-line summary). Returns each one's
    parser for its arguments. The group alone prints its help (exit 2), as no command."""
    parser.description = doc(description)
    parser.epilog = command_list("commands", {n: s for n, (_, s) in commands.items()})
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", help="One of the commands below.")

    def usage(args: argparse.Namespace) -> None:
        parser.print_help(sys.stderr)
        sys.exit(2)

    parser.set_defaults(run=usage)
    parsers = {}
    for name, (run, _) in commands.items():
        child = sub.add_parser(
            name, prog=f"{parser.prog} {name}", formatter_class=Formatter, allow_abbrev=False
        )
        command(child, run)
        parsers[name] = child
    return parsers


def home_option(parser: Parser) -> None:
    parser.add_argument(
        "--home",
        dest="home_dir",
        type=Path,
        default=None,
        metavar="PATH",
        help="The node's home directory (default: ~/.local/share/media-node; the service uses "
        f"/var/lib/media-node). [env var: {ENV_VAR}]",
    )


def path_type(
    *, folder: bool = False, exists: bool = False, allow_dash: bool = False
) -> Callable[[str], Path]:
    """A Path argument: refused (a usage error) when it names the wrong kind of thing,
    or, `exists`, nothing at all."""
    kind, other = ("Directory", "a file") if folder else ("File", "a directory")

    def convert(value: str) -> Path:
        path = Path(value)
        if allow_dash and value == "-":
            return path
        if not path.exists():
            if exists:
                raise argparse.ArgumentTypeError(f"{kind} '{value}' does not exist.")
            return path
        if path.is_dir() != folder:
            raise argparse.ArgumentTypeError(f"{kind} '{value}' is {other}.")
        return path

    return convert


def path_option(
    parser: Parser, flag: str, dest: str, help: str, *, folder: bool = False, required: bool = False
) -> None:
    """An option naming a file (or, `folder`, a directory) as a Path; None when not given."""
    parser.add_argument(
        flag,
        dest=dest,
        type=path_type(folder=folder),
        default=None,
        required=required,
        metavar="DIRECTORY" if folder else "FILE",
        help=help,
    )


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An integer low..high (both included); anything else is a usage error (exit 2)."""

    def convert(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid integer.") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number} is not in the range {low}<=x<={high}.")
        return number

    convert.__name__ = "integer"
    return convert


def positive_float(value: str) -> float:
    """A number of seconds above 0; anything else is a usage error (exit 2)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a valid float.") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value} is not in the range x>0.")
    return number


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


def log_level_from(config: Config, verbose: int) -> None:
    """-v/-vv win; otherwise config [node] log_level (default info) for long-running commands."""
    import logging

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
