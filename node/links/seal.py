"""Sealing a link to its recipient: a NaCl sealed box to the X25519 form of the
recipient's Ed25519 key, so a broker or messenger in the middle sees only that a
message passed (not who sent it, nor any address).

What is sealed is the JWS in binary form: 2-byte big-endian header length, the
header, the payload, the 64-byte signature. Sealing the base64url text instead would
base64url it twice (a third longer). The receiver rebuilds the exact compact JWS text,
so an answer's `ofh` is the same whether the offer travelled sealed or not."""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.public import PublicKey, SealedBox

from ..identity import Identity, verify_key_for
from .b64 import b64url_decode, b64url_encode
from .errors import LinkError

SIGNATURE_BYTES = 64


def pack_jws(jws_text: str) -> bytes:
    header, payload, signature = (b64url_decode(part) for part in jws_text.split("."))
    if len(signature) != SIGNATURE_BYTES or len(header) > 0xFFFF:
        raise ValueError("not an Ed25519 JWS")
    return len(header).to_bytes(2, "big") + header + payload + signature


def unpack_jws(data: bytes) -> str:
    if len(data) < 2 + SIGNATURE_BYTES:
        raise LinkError("malformed", "sealed content is too short to be a JWS")
    header_len = int.from_bytes(data[:2], "big")
    body = data[2:]
    if header_len > len(body) - SIGNATURE_BYTES:
        raise LinkError("malformed", "sealed content has an impossible header length")
    header, payload, signature = body[:header_len], body[header_len:-SIGNATURE_BYTES], body[-SIGNATURE_BYTES:]
    return ".".join(b64url_encode(part) for part in (header, payload, signature))


def seal(jws_text: str, recipient_node_id: str) -> bytes:
    curve_pk: PublicKey = verify_key_for(recipient_node_id).to_curve25519_public_key()
    return SealedBox(curve_pk).encrypt(pack_jws(jws_text))


def unseal(box: bytes, identity: Identity) -> str:
    try:
        data = SealedBox(identity.signing_key.to_curve25519_private_key()).decrypt(box)
    except (CryptoError, ValueError):
        raise LinkError("unseal-failed", "sealed to another node, or damaged") from None
    return unpack_jws(data)
