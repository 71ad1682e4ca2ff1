"""media-node command line. Thin: parse arguments, call into the modules.

Every command takes --home (env MEDIA_NODE_HOME). Errors print one line to stderr and
exit non-zero (a usage error exits 2); link rejections exit 3 with the reason code first.

Built on the standard library's argparse. One module per command group; `COMMANDS`
names where each lives and its one-line summary. The top level is parsed first, and
only the chosen command's module is imported and its parser built, so the short
commands (`id`, `link make`, `link inspect`) load only what they use: no config for
`id`, no media, aiortc or MQTT for any of them. `--help` lists every command from the
table, importing none."""

from __future__ import annotations

import importlib
import sys

from .. import __version__
from ..errors import NodeError
from .common import Parser, command_list, doc, new_parser

# command name -> ("module:function" in this package that builds its parser, summary)
COMMANDS = {
    "init": ("identity:init", "Create the home: config.toml, identity key, drop folders."),
    "id": ("identity:show_id", "Print this node's id (its Ed25519 public key, base32)."),
    "peers": ("peers:peers", "The allowlist: which nodes this node trusts, to do what."),
    "wireguard": ("wireguard:wireguard", "The WireGuard overlay's peer table (docs/overlays.md)."),
    "link": ("links:link", "Make and inspect signed handshake links (docs/link-format.md)."),
    "profile": ("deploy:profile_group", "Board profiles: video source, encoder, audio, config.txt."),
    "doctor": ("deploy:doctor", "What this machine is missing to run the node, with each fix."),
    "run": ("daemon:run", "The daemon: serve view requests and calls until SIGTERM."),
    "view": ("view:view", "Watch a peer's camera and microphone; prints a JSON summary."),
    "web": ("web:web", "The browser viewer on 127.0.0.1: watch peers, answer rings."),
    "demo": ("demo:demo", "Two nodes on this machine stream to each other: a self-test."),
    "bench": ("demo:bench", "Benchmark against aiortc and GStreamer (report to OUT/)."),
}

# Commands that never log: the logging set-up (and the logging module) is skipped.
QUIET = frozenset({"init", "id", "peers", "link", "profile"})

DESCRIPTION = """media-node: publish a camera and microphone over WebRTC to trusted peers, on
overlay-network addresses only, with Ed25519-signed handshake links.

Start with `media-node init`, add peers with `media-node peers add`, then
`media-node run` (the daemon) or `media-node demo` (two nodes on this machine)."""


def _top_parser() -> Parser:
    parser = new_parser(
        "media-node",
        doc(DESCRIPTION),
        command_list("commands", {name: summary for name, (_, summary) in sorted(COMMANDS.items())}),
    )
    parser.usage = "media-node [-h] [--version] [-v] COMMAND ..."
    parser.add_argument(
        "--version",
        action="version",
        version=f"media-node, version {__version__}",
        help="Show the version and exit.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="More log output (-vv for debug).")
    parser.add_argument(
        "command", nargs="?", choices=sorted(COMMANDS), metavar="COMMAND", help="One of the commands below."
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """The media-node console script: `argv` (default: sys.argv[1:]) in, an exit code out
    (SystemExit): 0, 1 for `error: ...`, 2 for a usage error, 3 for a rejected link."""
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    # the top level has only flags: the first word that is not one is the command
    split = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
    top_parser = _top_parser()
    top = top_parser.parse_args(args[: split + 1])
    if top.command is None:
        top_parser.print_help(sys.stderr)
        sys.exit(2)
    name: str = top.command
    module, function = COMMANDS[name][0].split(":")
    build = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    parser = new_parser(f"media-node {name}", None)
    build(parser)
    options = parser.parse_args(args[split + 1 :])
    options.verbose = top.verbose
    if name not in QUIET or top.verbose:
        import logging

        from ..logs import setup_logging

        # Under systemd (JOURNAL_STREAM set) no own timestamp and <N> priority prefixes.
        setup_logging(max(logging.WARNING - 10 * top.verbose, logging.DEBUG))
    try:
        options.run(options)
    except NodeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except OSError as e:  # the file system said no (a home that is a file, no permission, disk full)
        if top.verbose >= 2:
            raise  # -vv: the traceback, for whoever debugs it
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        sys.exit(1)


__all__ = ["COMMANDS", "main"]
