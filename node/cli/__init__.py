"""media-node command line. Thin: parse arguments, call into the modules.

Every command takes --home (env MEDIA_NODE_HOME). Errors print one line to stderr and
exit non-zero; link rejections exit 3 with the reason code first.

One module per command group; `COMMANDS` names where each lives, and a command's module
is imported only when that command runs (or `--help` lists them all), so the short
commands (`id`, `link make`, `link inspect`) load only what they use: no config for
`id`, no media, aiortc or MQTT for any of them."""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import NodeError

# command name -> "module:attribute" in this package
COMMANDS = {
    "init": "identity:init",
    "id": "identity:show_id",
    "peers": "peers:peers",
    "wireguard": "wireguard:wireguard",
    "link": "links:link",
    "profile": "deploy:profile_group",
    "doctor": "deploy:doctor",
    "run": "daemon:run",
    "view": "view:view",
    "web": "web:web",
    "demo": "demo:demo",
    "bench": "demo:bench",
}

# Commands that never log: the logging set-up (and the logging module) is skipped.
QUIET = frozenset({"init", "id", "peers", "link", "profile"})


class NodeGroup(click.Group):
    """Loads each command from its module on first use, and turns NodeError (and an
    OSError from the file system) into `error: ...` on stderr and its exit code, never a
    traceback (-vv shows an OSError's)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return super().get_command(ctx, cmd_name)
        module, attribute = spec.split(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except NodeError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except OSError as e:  # the file system said no (a home that is a file, no permission, disk full)
            if ctx.params.get("verbose", 0) >= 2:
                raise  # -vv: the traceback, for whoever debugs it
            where = f": {e.filename}" if e.filename else ""
            click.echo(f"error: {e.strerror or e}{where}", err=True)
            sys.exit(1)


@click.group(cls=NodeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="media-node")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """media-node: publish a camera and microphone over WebRTC to trusted peers, on
    overlay-network addresses only, with Ed25519-signed handshake links.

    Start with `media-node init`, add peers with `media-node peers add`, then
    `media-node run` (the daemon) or `media-node demo` (two nodes on this machine)."""
    if ctx.invoked_subcommand in QUIET and not verbose:
        return
    import logging

    from ..logs import setup_logging

    # Under systemd (JOURNAL_STREAM set) no own timestamp and <N> priority prefixes.
    setup_logging(max(logging.WARNING - 10 * verbose, logging.DEBUG))


__all__ = ["COMMANDS", "main"]
