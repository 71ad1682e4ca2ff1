"""Sealing a link to its recipient: a NaCl sealed box to the X25519 form of the
recipient's Ed25519 key, so a broker or messenger in the middle sees only that a
message passed (not who sent it, nor any address)."""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.public import PublicKey, SealedBox

from ..identity import Identity, verify_key_for
from .errors import LinkError


def seal(jws_text: str, recipient_node_id: str) -> bytes:
    curve_pk: PublicKey = verify_key_for(recipient_node_id).to_curve25519_public_key()
    return SealedBox(curve_pk).encrypt(jws_text.encode("ascii"))


def unseal(box: bytes, identity: Identity) -> str:
    try:
        data = SealedBox(identity.signing_key.to_curve25519_private_key()).decrypt(box)
        return data.decode("ascii")
    except (CryptoError, UnicodeDecodeError, ValueError):
        raise LinkError("unseal-failed", "sealed to another node, or damaged") from None
