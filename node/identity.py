"""The node's Ed25519 identity: key file (0600, like ssh), node id encoding.

A node id is the lowercase Crockford base32 of the 32-byte public key, no padding:
52 characters whose last 4 bits are zero (the shape Staex uses for its node ids)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .errors import NodeError

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford: no i, l, o, u
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
# Crockford's decoding is forgiving of look-alikes typed by people.
_DECODE.update({"o": 0, "i": 1, "l": 1})
NODE_ID_LEN = 52


class InvalidNodeId(NodeError):
    pass


class KeyPermissionError(NodeError):
    pass


def encode_node_id(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise ValueError("a node id encodes a 32-byte public key")
    n = int.from_bytes(public_key, "big") << 4  # 256 bits + 4 zero pad bits = 52 symbols
    return "".join(ALPHABET[(n >> (5 * i)) & 31] for i in reversed(range(NODE_ID_LEN)))


def decode_node_id(node_id: str) -> bytes:
    """The 32-byte public key in a node id; InvalidNodeId with the reason otherwise."""
    if not isinstance(node_id, str):
        raise InvalidNodeId("node id must be text")
    text = node_id.strip().lower()
    if len(text) != NODE_ID_LEN:
        raise InvalidNodeId(f"node id must be {NODE_ID_LEN} characters, got {len(text)}: {node_id!r}")
    n = 0
    for ch in text:
        if ch not in _DECODE:
            raise InvalidNodeId(f"node id has a character outside Crockford base32: {ch!r}")
        n = (n << 5) | _DECODE[ch]
    if n & 0xF:
        raise InvalidNodeId("node id's last 4 bits must be zero (not a 32-byte key)")
    return (n >> 4).to_bytes(32, "big")


def normalize_node_id(node_id: str) -> str:
    return encode_node_id(decode_node_id(node_id))


def verify_key_for(node_id: str) -> VerifyKey:
    return VerifyKey(decode_node_id(node_id))


def check_key_permissions(path: Path) -> None:
    """Refuse a key file others can read or that another user owns, as ssh does."""
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyPermissionError(
            f"{path} is accessible by group/others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"the private key must be private: chmod 600 {path}"
        )
    if st.st_uid != os.geteuid():
        raise KeyPermissionError(
            f"{path} is owned by uid {st.st_uid}, not by the user running media-node "
            f"(uid {os.geteuid()}): chown it to this user"
        )


@dataclass(frozen=True)
class Identity:
    signing_key: SigningKey

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def node_id(self) -> str:
        return encode_node_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message).signature

    @classmethod
    def generate(cls) -> Identity:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        return cls(SigningKey(seed))

    @classmethod
    def load(cls, path: Path) -> Identity:
        if not path.exists():
            raise NodeError(f"no identity key at {path}: run `media-node init` first")
        check_key_permissions(path)
        text = path.read_text().strip()
        try:
            seed = bytes.fromhex(text)
            if len(seed) != 32:
                raise ValueError
        except ValueError:
            raise NodeError(f"{path} is not a media-node identity key (64 hex characters)") from None
        return cls.from_seed(seed)

    def save(self, path: Path) -> None:
        """Write the seed with mode 0600 from the start (never briefly world-readable)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(bytes(self.signing_key).hex() + "\n")


def verify_signature(node_id: str, message: bytes, signature: bytes) -> bool:
    try:
        verify_key_for(node_id).verify(message, signature)
        return True
    except (BadSignatureError, ValueError, InvalidNodeId):
        return False
