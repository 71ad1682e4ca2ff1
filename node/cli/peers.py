"""`peers add|list|remove`: the allowlist (peers.toml)."""

from __future__ import annotations

import argparse
import json

from ..peers import PERMISSION_HELP, PeerStore, make_peer
from .common import Parser, default_text, echo, existing_home, group, home_option

_ALLOW_HELP = "Comma-separated permissions: " + "; ".join(f"{p}: {h}" for p, h in PERMISSION_HELP.items())


def peers(parser: Parser) -> None:
    commands = {
        "add": (run_add, "Trust NODE_ID under NAME, with its permissions and binding."),
        "list": (run_list, "List trusted peers."),
        "remove": (run_remove, "Stop trusting a peer (by name or node id)."),
    }
    sub = group(parser, "The allowlist: which nodes this node trusts and what each may do.", commands)
    add = sub["add"]
    home_option(add)
    add.add_argument("name", metavar="NAME")
    add.add_argument("node_id", metavar="NODE_ID")
    add.add_argument("--allow", default="view", help=_ALLOW_HELP + default_text("view"))
    add.add_argument("--address", default="", help="static overlay: the peer's overlay address.")
    add.add_argument(
        "--yggdrasil-key", default="", help="yggdrasil overlay: the peer's Yggdrasil public key (hex)."
    )
    add.add_argument(
        "--staex-id", default="", help="staex overlay: the peer's Staex id (default: its node id)."
    )
    add.add_argument(
        "--wireguard-key", default="", help="wireguard overlay: the peer's WireGuard public key (base64)."
    )
    add.add_argument(
        "--nebula-cert", default="", help="nebula overlay: the peer's certificate name or fingerprint."
    )
    add.add_argument(
        "--tailscale-node",
        default="",
        help="tailscale overlay: the peer's node key (nodekey:HEX) or stable id.",
    )
    add.add_argument(
        "--via",
        default="",
        metavar="file:DIR|mqtt",
        help="How view and web reach this peer (default: --via).",
    )
    add.add_argument("--replace", action="store_true", help="Overwrite a peer of the same name.")
    home_option(sub["list"])
    sub["list"].add_argument("--json", dest="as_json", action="store_true", help="Machine-readable output.")
    home_option(sub["remove"])
    sub["remove"].add_argument("name_or_id", metavar="NAME_OR_ID")


def run_add(args: argparse.Namespace) -> None:
    """Trust NODE_ID under NAME (docs/overlays.md: which binding each overlay needs)."""
    home = existing_home(args.home_dir)
    bindings = (
        args.address,
        args.yggdrasil_key,
        args.staex_id,
        args.wireguard_key,
        args.nebula_cert,
        args.tailscale_node,
    )
    peer = make_peer(args.name, args.node_id, args.allow, *bindings, via=args.via)
    PeerStore(home.peers_file).add(peer, replace=args.replace)
    echo(f"added {peer.name} ({peer.node_id}) allow={','.join(sorted(peer.allow)) or '-'}")


def run_list(args: argparse.Namespace) -> None:
    """List trusted peers."""
    found = PeerStore(existing_home(args.home_dir).peers_file).load()
    if args.as_json:
        echo(json.dumps({n: p.to_toml() for n, p in found.items()}, indent=2))
        return
    for p in found.values():
        binding = (
            p.address
            or (p.yggdrasil_key and f"ygg:{p.yggdrasil_key[:16]}...")
            or p.staex_id
            or (p.wireguard_key and f"wg:{p.wireguard_key}")
            or (p.nebula_cert and f"nebula:{p.nebula_cert}")
            or (p.tailscale_node and f"ts:{p.tailscale_node}")
            or "-"
        )
        echo(f"{p.name}\t{p.node_id}\t{','.join(sorted(p.allow)) or '-'}\t{binding}")


def run_remove(args: argparse.Namespace) -> None:
    """Stop trusting a peer (by name or node id)."""
    peer = PeerStore(existing_home(args.home_dir).peers_file).remove(args.name_or_id)
    echo(f"removed {peer.name} ({peer.node_id})")
