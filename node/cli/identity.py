"""`init` and `id`: the node's home and its Ed25519 identity."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import NodeError
from .common import get_home, home_option, load_identity


@click.command(short_help="Create the home: config.toml, identity key, drop folders.")
@home_option
@click.option("--name", default=None, help="Human name for this node (status, logs).")
@click.option("--force", is_flag=True, help="Keep an existing key but rewrite a missing config.")
def init(home_dir: Path | None, name: str | None, force: bool) -> None:
    """Create the home: config.toml (every field commented), an Ed25519 identity key
    (mode 0600) and the drop folders. Prints the node id as the last line."""
    home = get_home(home_dir)
    if home.key_file.exists() and not force:
        raise NodeError(f"{home.path} already has an identity ({home.key_file}); nothing changed")
    home.create(name)
    identity = load_identity(home)
    click.echo(f"home: {home.path}", err=True)
    click.echo(identity.node_id)


@click.command("id", short_help="Print this node's id (its Ed25519 public key, base32).")
@home_option
def show_id(home_dir: Path | None) -> None:
    """Print this node's id (Crockford base32 of its Ed25519 public key)."""
    click.echo(load_identity(get_home(home_dir)).node_id)
