"""JWS compact serialization (RFC 7515) with EdDSA/Ed25519 (RFC 8037), as v1 links use it.

Protected header: {"alg":"EdDSA","typ":"mnode1","pd":<b64url(sha256(payload)[:12])>}.
"pd" lets a receiver tell a payload changed after signing ("tampered") from a signature
that does not match ("bad-signature"); stock JOSE libraries ignore it."""

from __future__ import annotations

import json

from nacl.bindings import crypto_hash_sha256

from ..identity import Identity, verify_signature
from . import strictjson
from .b64 import b64url_decode, b64url_encode
from .errors import LinkError

TYP = "mnode1"


# SHA-256 from libsodium (loaded already for the signature) rather than hashlib, whose
# OpenSSL module costs the short CLI commands ~3 ms to load; the digests are the same.
def _sha256(text: str) -> bytes:
    return crypto_hash_sha256(text.encode("ascii"))


def payload_digest(payload_segment: str) -> str:
    return b64url_encode(_sha256(payload_segment)[:12])


def sign_compact(identity: Identity, payload: bytes) -> str:
    payload_segment = b64url_encode(payload)
    header = {"alg": "EdDSA", "typ": TYP, "pd": payload_digest(payload_segment)}
    header_segment = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    signing_input = f"{header_segment}.{payload_segment}"
    signature = identity.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


class CompactJws:
    """A parsed, not yet verified, compact JWS."""

    def __init__(self, text: str):
        parts = text.split(".")
        if len(parts) != 3:
            raise LinkError("malformed", "a link's JWS has three dot-separated parts")
        self.header_segment, self.payload_segment, sig_segment = parts
        try:
            header = strictjson.loads(b64url_decode(self.header_segment))
            self.payload = b64url_decode(self.payload_segment)
            self.signature = b64url_decode(sig_segment)
        except strictjson.DuplicateKey:
            raise LinkError("malformed", "the JWS header names a parameter twice") from None
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise LinkError("malformed", "a JWS part is not base64url JSON") from None
        if not isinstance(header, dict) or header.get("alg") != "EdDSA" or header.get("typ") != TYP:
            raise LinkError("malformed", 'JWS header must be {"alg":"EdDSA","typ":"mnode1",...}')
        if header.get("crit") is not None:
            raise LinkError("malformed", "JWS header has critical extensions this node does not know")
        if len(self.signature) != 64:
            raise LinkError("malformed", "an Ed25519 signature is 64 bytes")
        self.header = header
        self.text = text

    def check_digest(self) -> None:
        if self.header.get("pd") != payload_digest(self.payload_segment):
            raise LinkError("tampered")

    def check_signature(self, signer_node_id: str) -> None:
        signing_input = f"{self.header_segment}.{self.payload_segment}".encode("ascii")
        if not verify_signature(signer_node_id, signing_input, self.signature):
            raise LinkError("bad-signature", f"the signature does not verify with {signer_node_id}'s key")

    def digest(self) -> str:
        """What an answer's `ofh` names: base64url SHA-256 of the compact JWS text."""
        return jws_digest(self.text)


def jws_digest(jws_text: str) -> str:
    return b64url_encode(_sha256(jws_text))
