"""1,000 bad links of every kind, each with the reason the node must give for it."""

from __future__ import annotations

import random
import time

from node.identity import Identity
from node.links import make_link
from node.links.b64 import b64url_encode
from node.links.claims import Claims
from node.links.payload import encode_payload

from .helpers import SDP, view_request


def resign(link_text: str, other: Identity) -> str:
    """Same header and payload, signed by another key: a forgery."""
    header, payload, _ = link_text.removeprefix("mnode:").split(".")
    return f"mnode:{header}.{payload}.{b64url_encode(other.sign(f'{header}.{payload}'.encode()))}"


def tamper(link_text: str, claims: Claims) -> str:
    header, _, sig = link_text.removeprefix("mnode:").split(".")
    return f"mnode:{header}.{b64url_encode(encode_payload(claims))}.{sig}"


def bad_links(
    sender, receiver, stranger, limited, used_link: str, count: int = 1000, seed: int = 5
) -> list[tuple[bytes, str]]:
    """(payload, expected reason) pairs. `used_link` was already accepted once (its
    copies are replays); `limited` is allowlisted without 'view'."""
    rnd = random.Random(seed)
    forger = Identity.generate()
    kinds = []

    def garbage():
        n = rnd.randrange(1, 300)
        return bytes(rnd.randrange(33, 127) for _ in range(n)), "malformed"

    def not_ascii():
        return "mnode:éé".encode() + bytes([0xFF, 0xFE]), "malformed"

    def three_parts():
        return (
            f"mnode:{b64url_encode(rnd.randbytes(20))}.{b64url_encode(rnd.randbytes(30))}.x".encode(),
            "malformed",
        )

    def forged():
        return resign(view_request(sender, receiver).text, forger).encode(), "bad-signature"

    def tampered():
        link = view_request(sender, receiver)
        claims = Claims(**{**link.claims.__dict__, "sdp": link.claims.sdp + "a=x\r\n"})
        return tamper(link.text, claims).encode(), "tampered"

    def oversized():
        return b"mnode:" + b"A" * (70 * 1024), "oversized"

    def replayed():
        return used_link.encode(), "replayed"

    def wrong_audience():
        return make_link(
            sender.identity, "view-request", stranger.node_id, sdp=SDP
        ).text.encode(), "wrong-audience"

    def unknown_sender():
        return view_request(stranger, receiver).text.encode(), "unknown-sender"

    def expired():
        return view_request(sender, receiver, now=time.time() - 3600).text.encode(), "expired"

    def future():
        return view_request(sender, receiver, now=time.time() + 3600).text.encode(), "not-yet-valid"

    def no_permission():
        return view_request(limited, receiver).text.encode(), "no-permission"

    def empty():
        return b"  \n", "empty"

    makers = [
        garbage,
        not_ascii,
        three_parts,
        forged,
        tampered,
        oversized,
        replayed,
        wrong_audience,
        unknown_sender,
        expired,
        future,
        no_permission,
        empty,
    ]
    for i in range(count):
        kinds.append(makers[i % len(makers)]())
    rnd.shuffle(kinds)
    return kinds
