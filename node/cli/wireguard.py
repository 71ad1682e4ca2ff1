"""`wireguard export`: the WireGuard overlay's peer table, written as root."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import NodeError
from .common import path_option


@click.group()
def wireguard() -> None:
    """The WireGuard overlay's peer table (docs/overlays.md)."""


@wireguard.command("export", short_help="As root: write the WireGuard peer table the service reads.")
@click.argument("interface")
@path_option("--to", "to", "Where to write the table.", required=True)
@click.option("--group", default="", help="Group that may read it (the service user's group).")
@click.option("--wg", default="wg", show_default=True, help="The wg program.")
def wireguard_export(interface: str, to: Path, group: str, wg: str) -> None:
    """As root: write INTERFACE's peer public keys and allowed IPs (never a private key)
    to a file the unprivileged service reads (mode 0640, group --group)."""
    from ..overlay.wgtable import export_table

    try:
        table = export_table(interface, to, group, wg)
    except KeyError:
        raise NodeError(f"no group named {group!r}") from None
    except OSError as e:
        raise NodeError(f"cannot write {to}: {e.strerror or e}") from None
    click.echo(f"{to}: {len(table.peers)} peer(s) of {interface}")
