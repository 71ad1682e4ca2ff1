"""`peers add|list|remove`: the allowlist (peers.toml)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..peers import PERMISSION_HELP, PeerStore, make_peer
from .common import existing_home, home_option


@click.group(short_help="The allowlist: which nodes this node trusts, to do what.")
def peers() -> None:
    """The allowlist: which nodes this node trusts and what each may do."""


_ALLOW_HELP = "Comma-separated permissions: " + "; ".join(f"{p}: {h}" for p, h in PERMISSION_HELP.items())


@peers.command("add", short_help="Trust NODE_ID under NAME, with its permissions and binding.")
@home_option
@click.argument("name")
@click.argument("node_id")
@click.option("--allow", default="view", show_default=True, help=_ALLOW_HELP)
@click.option("--address", default="", help="static overlay: the peer's overlay address.")
@click.option("--yggdrasil-key", default="", help="yggdrasil overlay: the peer's Yggdrasil public key (hex).")
@click.option("--staex-id", default="", help="staex overlay: the peer's Staex id (default: its node id).")
@click.option(
    "--wireguard-key", default="", help="wireguard overlay: the peer's WireGuard public key (base64)."
)
@click.option("--nebula-cert", default="", help="nebula overlay: the peer's certificate name or fingerprint.")
@click.option(
    "--tailscale-node", default="", help="tailscale overlay: the peer's node key (nodekey:HEX) or stable id."
)
@click.option(
    "--via", default="", metavar="file:DIR|mqtt", help="How view and web reach this peer (default: --via)."
)
@click.option("--replace", is_flag=True, help="Overwrite a peer of the same name.")
def peers_add(
    home_dir: Path | None,
    name: str,
    node_id: str,
    allow: str,
    address: str,
    yggdrasil_key: str,
    staex_id: str,
    wireguard_key: str,
    nebula_cert: str,
    tailscale_node: str,
    via: str,
    replace: bool,
) -> None:
    """Trust NODE_ID under NAME (docs/overlays.md: which binding each overlay needs)."""
    home = existing_home(home_dir)
    bindings = (address, yggdrasil_key, staex_id, wireguard_key, nebula_cert, tailscale_node)
    peer = make_peer(name, node_id, allow, *bindings, via=via)
    PeerStore(home.peers_file).add(peer, replace=replace)
    click.echo(f"added {peer.name} ({peer.node_id}) allow={','.join(sorted(peer.allow)) or '-'}")


@peers.command("list")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def peers_list(home_dir: Path | None, as_json: bool) -> None:
    """List trusted peers."""
    found = PeerStore(existing_home(home_dir).peers_file).load()
    if as_json:
        click.echo(json.dumps({n: p.to_toml() for n, p in found.items()}, indent=2))
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
        click.echo(f"{p.name}\t{p.node_id}\t{','.join(sorted(p.allow)) or '-'}\t{binding}")


@peers.command("remove")
@home_option
@click.argument("name_or_id")
def peers_remove(home_dir: Path | None, name_or_id: str) -> None:
    """Stop trusting a peer (by name or node id)."""
    peer = PeerStore(existing_home(home_dir).peers_file).remove(name_or_id)
    click.echo(f"removed {peer.name} ({peer.node_id})")
