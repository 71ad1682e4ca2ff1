"""`init` and `id`: the node's home and its Ed25519 identity."""

from __future__ import annotations

import argparse

from ..errors import NodeError
from .common import Parser, command, echo, get_home, home_option, load_identity


def init(parser: Parser) -> None:
    command(parser, run_init)
    home_option(parser)
    parser.add_argument("--name", default=None, help="Human name for this node (status, logs).")
    parser.add_argument(
        "--force", action="store_true", help="Keep an existing key but rewrite a missing config."
    )


def run_init(args: argparse.Namespace) -> None:
    """Create the home: config.toml (every field commented), an Ed25519 identity key
    (mode 0600) and the drop folders. Prints the node id as the last line."""
    home = get_home(args.home_dir)
    if home.key_file.exists() and not args.force:
        raise NodeError(f"{home.path} already has an identity ({home.key_file}); nothing changed")
    home.create(args.name)
    identity = load_identity(home)
    echo(f"home: {home.path}", err=True)
    echo(identity.node_id)


def show_id(parser: Parser) -> None:
    command(parser, run_id)
    home_option(parser)


def run_id(args: argparse.Namespace) -> None:
    """Print this node's id (Crockford base32 of its Ed25519 public key)."""
    echo(load_identity(get_home(args.home_dir)).node_id)
