"""Making and opening v1 links: `mnode:<JWS>` or, sealed, `mnode-sealed:<base64url box>`.

Opening checks, in this order (the first failure is the reason given): size, shape,
unseal, payload digest (tampered), signature, audience, time window, allowlist,
permission, answer binding, replay. Nothing but LinkError ever escapes `open`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import NodeError
from ..identity import Identity
from ..peers import Peer, PeerStore
from .b64 import b64url_decode, b64url_encode
from .claims import KIND_PERMISSION, KINDS, Claims
from .errors import LinkError
from .jws import CompactJws, jws_digest, sign_compact
from .payload import decode_payload, encode_payload
from .replay import ReplayCache
from .sdp import compact_sdp
from .seal import seal, unseal

PREFIX = "mnode:"
SEALED_PREFIX = "mnode-sealed:"
MAX_LINK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Link:
    text: str  # what is sent: prefix + JWS, or the sealed form
    jws: str  # the compact JWS inside (what an answer's ofh hashes)
    claims: Claims

    @property
    def digest(self) -> str:
        return jws_digest(self.jws)


@dataclass(frozen=True)
class OpenedLink:
    claims: Claims
    jws: str
    sealed: bool
    peer: Peer | None

    @property
    def digest(self) -> str:
        return jws_digest(self.jws)


def new_nonce() -> str:
    return b64url_encode(os.urandom(16))


def make_link(
    identity: Identity,
    kind: str,
    to: str,
    *,
    ttl: int = 120,
    sdp: str = "",
    addr: str = "",
    prov: str = "",
    ofh: str = "",
    err: dict[str, str] | None = None,
    sealed: bool = False,
    now: float | None = None,
    nonce: str | None = None,
) -> Link:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    iat = int(time.time() if now is None else now)
    claims = Claims(
        kind=kind,
        iss=identity.node_id,
        aud=to,
        iat=iat,
        exp=iat + ttl,
        nonce=nonce or new_nonce(),
        addr=addr,
        prov=prov,
        sdp=compact_sdp(sdp) if sdp else "",
        ofh=ofh,
        err=err or {},
    )
    claims.check_shape()
    jws = sign_compact(identity, encode_payload(claims))
    text = SEALED_PREFIX + b64url_encode(seal(jws, to)) if sealed else PREFIX + jws
    return Link(text=text, jws=jws, claims=claims)


class LinkOpener:
    """Verifies links addressed to one node. `peers=None` skips the allowlist (used by
    `link inspect --no-allowlist`); `replay=None` skips the replay check."""

    def __init__(
        self,
        identity: Identity,
        peers: PeerStore | None,
        replay: ReplayCache | None = None,
        skew: int = 30,
        clock: Callable[[], float] = time.time,
    ):
        self.identity = identity
        self.peers = peers
        self.replay = replay
        self.skew = skew
        self.clock = clock

    def open(self, text: str | bytes, *, expect_offer: str | None = None) -> OpenedLink:
        try:
            return self._open(text, expect_offer)
        except LinkError:
            raise
        except Exception as e:  # defence in depth: a decoder bug must not look like a crash
            raise LinkError("malformed", f"unreadable link ({type(e).__name__})") from None

    def _open(self, text: str | bytes, expect_offer: str | None) -> OpenedLink:
        if len(text) > MAX_LINK_BYTES:
            raise LinkError("oversized", f"{len(text)} bytes > {MAX_LINK_BYTES}")
        if isinstance(text, bytes):
            try:
                text = text.decode("ascii")
            except UnicodeDecodeError:
                raise LinkError("malformed", "a link is ASCII text") from None
        text = text.strip()
        sealed = text.startswith(SEALED_PREFIX)
        if sealed:
            try:
                box = b64url_decode(text[len(SEALED_PREFIX) :])
            except ValueError:
                raise LinkError("malformed", "sealed link is not base64url") from None
            jws_text = unseal(box, self.identity)
        else:
            jws_text = text[len(PREFIX) :] if text.startswith(PREFIX) else text
        jws = CompactJws(jws_text)
        jws.check_digest()
        claims = decode_payload(jws.payload)
        jws.check_signature(claims.iss)
        if claims.aud != self.identity.node_id:
            raise LinkError(
                "wrong-audience", f"addressed to {claims.aud}, this node is {self.identity.node_id}"
            )
        now = self.clock()
        if claims.iat > now + self.skew:
            raise LinkError("not-yet-valid", f"issued {claims.iat - now:.0f} s in the future (check clocks)")
        if claims.exp < now - self.skew:
            raise LinkError("expired", f"expired {now - claims.exp:.0f} s ago")
        peer = None
        if self.peers is not None:
            try:
                peer = self.peers.by_id(claims.iss)
            except NodeError as e:
                raise LinkError("allowlist-unreadable", str(e)) from None
            if peer is None:
                raise LinkError("unknown-sender", f"{claims.iss} is not in the allowlist")
            needed = KIND_PERMISSION[claims.kind]
            if needed and not peer.may(needed):
                raise LinkError(
                    "no-permission",
                    f"peer {peer.name!r} may not {needed} (allow: "
                    f"{', '.join(sorted(peer.allow)) or 'nothing'})",
                )
        if expect_offer is not None and claims.kind in ("answer", "error") and claims.ofh != expect_offer:
            raise LinkError("wrong-offer")
        if self.replay is not None and not self.replay.claim(claims.iss, claims.nonce, claims.exp, now):
            raise LinkError("replayed", f"nonce {claims.nonce} from {claims.iss} was already used")
        return OpenedLink(claims=claims, jws=jws_text, sealed=sealed, peer=peer)
