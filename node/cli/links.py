"""`link inspect` and `link make`: signed handshake links by hand (docs/link-format.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import load_config
from ..errors import NodeError
from ..identity import normalize_node_id
from ..links import LinkError, LinkOpener, ReplayCache, make_link
from ..links.jws import jws_digest
from ..links.link import PREFIX, SEALED_PREFIX
from ..peers import PeerStore
from .common import get_home, home_option, load_identity


@click.group()
def link() -> None:
    """Make and inspect signed handshake links (docs/link-format.md)."""


def _read_arg(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


@link.command("inspect", short_help="Verify a link addressed to this node; print its claims (JSON).")
@home_option
@click.argument("link_text", metavar="LINK|-")
@click.option(
    "--replay/--no-replay",
    default=False,
    show_default=True,
    help="Check (and record) the nonce in this home's replay cache.",
)
@click.option("--no-allowlist", is_flag=True, help="Skip the allowlist and permission checks.")
@click.option(
    "--offer",
    "offer_link",
    default=None,
    help="For an answer or error: the offer it must answer, as its digest (from "
    "`link inspect` or `link make --digest`), the unsealed link, or @FILE.",
)
def link_inspect(
    home_dir: Path | None, link_text: str, replay: bool, no_allowlist: bool, offer_link: str | None
) -> None:
    """Verify a link addressed to this node and print its claims as JSON.

    A rejected link exits 3 and prints `rejected: REASON: message`; reasons are
    oversized, malformed, unseal-failed, tampered, bad-signature, wrong-audience,
    not-yet-valid, expired, unknown-sender, no-permission, wrong-offer, replayed
    (and allowlist-unreadable when this home's peers.toml is broken)."""
    home = get_home(home_dir)
    identity = load_identity(home)
    config = load_config(home.config_file)
    cache = ReplayCache(home.replay_db, config.links.clock_skew) if replay else None
    opener = LinkOpener(
        identity, None if no_allowlist else PeerStore(home.peers_file), cache, skew=config.links.clock_skew
    )
    expect = None
    if offer_link:
        text = (Path(offer_link[1:]).read_text() if offer_link.startswith("@") else offer_link).strip()
        if text.startswith(SEALED_PREFIX):
            raise NodeError(
                "--offer: a sealed link can only be opened by its recipient; pass the "
                "offer's digest (printed by `link make --digest`) instead"
            )
        # a digest is 43 base64url characters; anything with dots is a JWS
        expect = text if "." not in text and len(text) == 43 else jws_digest(text.removeprefix(PREFIX))
    try:
        opened = opener.open(_read_arg(link_text), expect_offer=expect)
    except LinkError as e:
        click.echo(f"rejected: {e.reason}: {e.detail}", err=True)
        sys.exit(e.exit_code)
    out = {
        "valid": True,
        "sealed": opened.sealed,
        "digest": opened.digest,
        "peer": opened.peer.name if opened.peer else None,
        "claims": opened.claims.to_json(),
    }
    import json

    click.echo(json.dumps(out, indent=2))


@link.command("make", short_help="Print a signed link from this node (scripts, checking a setup).")
@home_option
@click.argument("kind", type=click.Choice(["view-request", "offer", "answer", "error"]))
@click.option("--to", "to", required=True, help="Recipient node id (or a peer name).")
@click.option("--seal", is_flag=True, help="Seal the link to the recipient.")
@click.option(
    "--sdp-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SDP to carry (offer/answer/view-request). '-' is not accepted: use a file.",
)
@click.option("--answers", default="", help="answer/error: the digest of the link it answers.")
@click.option("--error-code", default="", help="error: the error code (e.g. busy).")
@click.option(
    "--ttl",
    type=click.IntRange(1, 86400),
    default=None,
    help="Seconds the link stays valid (default: config links.ttl).",
)
@click.option(
    "--digest",
    "show_digest",
    is_flag=True,
    help="Also print the link's digest (what an answer's ofh must equal) on stderr.",
)
def link_make(
    home_dir: Path | None,
    kind: str,
    to: str,
    seal: bool,
    sdp_file: Path | None,
    answers: str,
    error_code: str,
    ttl: int | None,
    show_digest: bool,
) -> None:
    """Print a signed link from this node (for scripts and for checking a setup)."""
    home = get_home(home_dir)
    identity = load_identity(home)
    config = load_config(home.config_file)
    peer = PeerStore(home.peers_file).find(to)
    to_id = peer.node_id if peer else to
    try:
        to_id = normalize_node_id(to_id)
    except NodeError as e:
        raise NodeError(f"--to: not a peer name or node id: {e}") from None
    sdp = sdp_file.read_text() if sdp_file else ""
    if kind in ("view-request", "offer", "answer") and not sdp:
        raise NodeError(f"a {kind} carries an SDP: pass --sdp-file")
    err = {"code": error_code, "message": ""} if kind == "error" else None
    if kind == "error" and not error_code:
        raise NodeError("an error link needs --error-code")
    made = make_link(
        identity,
        kind,
        to_id,
        ttl=config.links.ttl if ttl is None else ttl,
        sdp=sdp,
        ofh=answers,
        err=err,
        sealed=seal or config.links.seal,
        prov=config.overlay.provider,
    )
    click.echo(made.text)
    if show_digest:
        click.echo(f"digest: {made.digest}", err=True)
