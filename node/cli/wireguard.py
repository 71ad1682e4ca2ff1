"""`wireguard export`: the WireGuard overlay's peer table, written as root."""

from __future__ import annotations

import argparse

from ..errors import NodeError
from .common import Parser, default_text, echo, group, path_option


def wireguard(parser: Parser) -> None:
    commands = {
        "export": (run_export, "As root: write the WireGuard peer table the service reads."),
    }
    export = group(parser, "The WireGuard overlay's peer table (docs/overlays.md).", commands)["export"]
    export.add_argument("interface", metavar="INTERFACE")
    path_option(export, "--to", "to", "Where to write the table.", required=True)
    export.add_argument("--group", default="", help="Group that may read it (the service user's group).")
    export.add_argument("--wg", default="wg", help="The wg program." + default_text("wg"))


def run_export(args: argparse.Namespace) -> None:
    """As root: write INTERFACE's peer public keys and allowed IPs (never a private key)
    to a file the unprivileged service reads (mode 0640, group --group)."""
    from ..overlay.wgtable import export_table

    try:
        table = export_table(args.interface, args.to, args.group, args.wg)
    except KeyError:
        raise NodeError(f"no group named {args.group!r}") from None
    except OSError as e:
        raise NodeError(f"cannot write {args.to}: {e.strerror or e}") from None
    echo(f"{args.to}: {len(table.peers)} peer(s) of {args.interface}")
