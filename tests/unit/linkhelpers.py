"""Helpers to forge and mutate links for the tests."""

from node.identity import Identity
from node.links.b64 import b64url_encode
from node.links.claims import Claims
from node.links.jws import sign_compact
from node.links.payload import encode_payload

SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 101\r\n"
    "c=IN IP4 100.64.0.1\r\na=recvonly\r\n"
)


def resign(link_text: str, other: Identity) -> str:
    """The same header and payload, signed by someone else (a forgery)."""
    jws = link_text.removeprefix("mnode:")
    header, payload, _ = jws.split(".")
    sig = other.sign(f"{header}.{payload}".encode())
    return f"mnode:{header}.{payload}.{b64url_encode(sig)}"


def swap_payload(link_text: str, claims: Claims) -> str:
    """Replace the payload with other claims, keeping the original header and signature."""
    header, _, sig = link_text.removeprefix("mnode:").split(".")
    return f"mnode:{header}.{b64url_encode(encode_payload(claims))}.{sig}"


def signed_raw(identity: Identity, payload: bytes) -> str:
    return "mnode:" + sign_compact(identity, payload)
