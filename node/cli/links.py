"""`link inspect` and `link make`: signed handshake links by hand (docs/link-format.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import load_config
from ..errors import NodeError
from ..identity import normalize_node_id
from ..links import LinkError, LinkOpener, ReplayCache, make_link
from ..links.jws import jws_digest
from ..links.link import PREFIX, SEALED_PREFIX
from ..peers import PeerStore
from .common import (
    Parser,
    default_text,
    echo,
    get_home,
    group,
    home_option,
    int_range,
    load_identity,
    path_type,
)

KINDS = ["view-request", "offer", "answer", "error"]


def link(parser: Parser) -> None:
    commands = {
        "inspect": (run_inspect, "Verify a link addressed to this node; print its claims (JSON)."),
        "make": (run_make, "Print a signed link from this node (scripts, checking a setup)."),
    }
    sub = group(parser, "Make and inspect signed handshake links (docs/link-format.md).", commands)
    inspect = sub["inspect"]
    home_option(inspect)
    inspect.add_argument("link_text", metavar="LINK|-", help="The link, or - to read it from stdin.")
    inspect.add_argument(
        "--replay",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Check (and record) the nonce in this home's replay cache." + default_text("no-replay"),
    )
    inspect.add_argument(
        "--no-allowlist", action="store_true", help="Skip the allowlist and permission checks."
    )
    inspect.add_argument(
        "--offer",
        dest="offer_link",
        default=None,
        help="For an answer or error: the offer it must answer, as its digest (from "
        "`link inspect` or `link make --digest`), the unsealed link, or @FILE.",
    )
    make = sub["make"]
    home_option(make)
    make.add_argument("kind", choices=KINDS, metavar="{" + "|".join(KINDS) + "}")
    make.add_argument("--to", required=True, help="Recipient node id (or a peer name).")
    make.add_argument("--seal", action="store_true", help="Seal the link to the recipient.")
    make.add_argument(
        "--sdp-file",
        type=path_type(exists=True),
        metavar="FILE",
        help="SDP to carry (offer/answer/view-request). '-' is not accepted: use a file.",
    )
    make.add_argument("--answers", default="", help="answer/error: the digest of the link it answers.")
    make.add_argument("--error-code", default="", help="error: the error code (e.g. busy).")
    make.add_argument(
        "--ttl",
        type=int_range(1, 86400),
        default=None,
        metavar="SECONDS",
        help="Seconds the link stays valid, 1 to 86400 (default: config links.ttl).",
    )
    make.add_argument(
        "--digest",
        dest="show_digest",
        action="store_true",
        help="Also print the link's digest (what an answer's ofh must equal) on stderr.",
    )


def _read_arg(value: str) -> str:
    return sys.stdin.read() if value == "-" else value


def run_inspect(args: argparse.Namespace) -> None:
    """Verify a link addressed to this node and print its claims as JSON.

    A rejected link exits 3 and prints `rejected: REASON: message`; reasons are
    oversized, malformed, unseal-failed, tampered, bad-signature, wrong-audience,
    not-yet-valid, expired, unknown-sender, no-permission, wrong-offer, replayed
    (and allowlist-unreadable when this home's peers.toml is broken)."""
    home = get_home(args.home_dir)
    identity = load_identity(home)
    config = load_config(home.config_file)
    cache = ReplayCache(home.replay_db, config.links.clock_skew) if args.replay else None
    allowlist = None if args.no_allowlist else PeerStore(home.peers_file)
    opener = LinkOpener(identity, allowlist, cache, skew=config.links.clock_skew)
    expect = None
    offer_link: str | None = args.offer_link
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
        opened = opener.open(_read_arg(args.link_text), expect_offer=expect)
    except LinkError as e:
        echo(f"rejected: {e.reason}: {e.detail}", err=True)
        sys.exit(e.exit_code)
    out = {
        "valid": True,
        "sealed": opened.sealed,
        "digest": opened.digest,
        "peer": opened.peer.name if opened.peer else None,
        "claims": opened.claims.to_json(),
    }
    import json

    echo(json.dumps(out, indent=2))


def run_make(args: argparse.Namespace) -> None:
    """Print a signed link from this node (for scripts and for checking a setup)."""
    home = get_home(args.home_dir)
    identity = load_identity(home)
    config = load_config(home.config_file)
    kind: str = args.kind
    peer = PeerStore(home.peers_file).find(args.to)
    to_id = peer.node_id if peer else args.to
    try:
        to_id = normalize_node_id(to_id)
    except NodeError as e:
        raise NodeError(f"--to: not a peer name or node id: {e}") from None
    sdp = args.sdp_file.read_text() if args.sdp_file else ""
    if kind in ("view-request", "offer", "answer") and not sdp:
        raise NodeError(f"a {kind} carries an SDP: pass --sdp-file")
    err = {"code": args.error_code, "message": ""} if kind == "error" else None
    if kind == "error" and not args.error_code:
        raise NodeError("an error link needs --error-code")
    made = make_link(
        identity,
        kind,
        to_id,
        ttl=config.links.ttl if args.ttl is None else args.ttl,
        sdp=sdp,
        ofh=args.answers,
        err=err,
        sealed=args.seal or config.links.seal,
        prov=config.overlay.provider,
    )
    echo(made.text)
    if args.show_digest:
        echo(f"digest: {made.digest}", err=True)
