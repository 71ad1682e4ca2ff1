"""The claims a link carries (link format v1), and their structural validation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..identity import InvalidNodeId, decode_node_id
from .errors import LinkError

KINDS = ("view-request", "offer", "answer", "error")
# What the sender must be allowed to do for each kind (None: being allowlisted suffices;
# an answer or error is only accepted for a request this node sent).
KIND_PERMISSION = {"view-request": "view", "offer": "call", "answer": None, "error": None}
MAX_LIFETIME = 86400  # exp - iat; longer-lived links are refused as malformed
VERSION = 1


@dataclass(frozen=True)
class Claims:
    kind: str
    iss: str  # sender node id
    aud: str  # recipient node id
    iat: int  # issued at, unix seconds
    exp: int  # expiry, unix seconds
    nonce: str  # base64url, 16 random bytes; the replay cache key
    addr: str = ""  # the sender's overlay address (informational: receivers resolve their own)
    prov: str = ""  # the sender's overlay provider
    sdp: str = ""  # offer (view-request, offer) or answer SDP
    ofh: str = ""  # answer/error: base64url SHA-256 of the JWS it answers
    err: dict[str, str] = field(default_factory=dict)  # error: {"code": ..., "message": ...}
    v: int = VERSION

    def to_json(self) -> dict[str, object]:
        """Only the claims that carry something (smaller links)."""
        return {k: val for k, val in asdict(self).items() if val not in ("", {}, None)}

    @classmethod
    def from_json(cls, data: object) -> Claims:
        if not isinstance(data, dict):
            raise LinkError("malformed", "claims are not a JSON object")
        if data.get("v") != VERSION:
            raise LinkError("malformed", f"unsupported link version {data.get('v')!r}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise LinkError("malformed", f"unknown claims {sorted(unknown)}")
        for name in ("kind", "iss", "aud", "nonce"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise LinkError("malformed", f"claim {name!r} missing or not text")
        for name in ("iat", "exp"):
            if type(data.get(name)) is not int:
                raise LinkError("malformed", f"claim {name!r} missing or not an integer")
        for name in ("addr", "prov", "sdp", "ofh"):
            if name in data and not isinstance(data[name], str):
                raise LinkError("malformed", f"claim {name!r} is not text")
        if "err" in data and not (
            isinstance(data["err"], dict) and all(isinstance(v, str) for v in data["err"].values())
        ):
            raise LinkError("malformed", "claim 'err' is not an object of strings")
        claims = cls(**data)
        claims.check_shape()
        return claims

    def check_shape(self) -> None:
        if self.kind not in KINDS:
            raise LinkError("malformed", f"unknown kind {self.kind!r}")
        for name in ("iss", "aud"):
            try:
                decode_node_id(getattr(self, name))
            except InvalidNodeId as e:
                raise LinkError("malformed", f"claim {name!r}: {e}") from None
        if not (0 <= self.iat <= self.exp) or self.exp - self.iat > MAX_LIFETIME:
            raise LinkError("malformed", "iat/exp out of range (lifetime must be 0..86400 s)")
        if self.kind in ("view-request", "offer", "answer") and not self.sdp:
            raise LinkError("malformed", f"a {self.kind} must carry an SDP")
        if self.kind in ("answer", "error") and not self.ofh:
            raise LinkError("malformed", f"an {self.kind} must name the offer it answers (ofh)")
        if self.kind == "error" and "code" not in self.err:
            raise LinkError("malformed", "an error must carry err.code")

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=False).encode()
