"""The JWS payload of a v1 link: the claims as compact JSON, raw-DEFLATEd (RFC 1951)
with a fixed preset dictionary. Compressing once, outside the JSON, keeps an
audio+video offer under 1,000 characters (a second base64 layer for the SDP alone
would cost a third more). A third party inflates with zlib and PAYLOAD_DICTIONARY_V1."""

from __future__ import annotations

import json
import zlib

from . import strictjson
from .claims import Claims
from .errors import LinkError
from .sdp import SDP_TEMPLATE_V1

MAX_PAYLOAD_BYTES = 64 * 1024

# Claim names and common values, then the SDP template as it appears JSON-escaped.
# Strings used most go last (DEFLATE reaches them with the shortest distances).
PAYLOAD_DICTIONARY_V1 = (
    '{"kind":"error","err":{"code":"busy","message":""},"ofh":"'
    + json.dumps(SDP_TEMPLATE_V1)[1:-1]
    + '","ofh":"'
    + '{"kind":"answer","iss":"","aud":"","iat":1,"exp":1,"nonce":"","addr":"","prov":"static",'
    + '"prov":"staex","prov":"yggdrasil","sdp":"v=0\\r\\n'
    + '{"kind":"view-request","iss":"","aud":"","iat":1,"exp":1,"nonce":"","addr":"'
).encode()


def encode_payload(claims: Claims) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, PAYLOAD_DICTIONARY_V1)
    return comp.compress(claims.to_bytes()) + comp.flush()


def decode_payload(data: bytes) -> Claims:
    decomp = zlib.decompressobj(-15, PAYLOAD_DICTIONARY_V1)
    try:
        raw = decomp.decompress(data, MAX_PAYLOAD_BYTES)
    except zlib.error as e:
        raise LinkError("malformed", f"payload does not inflate: {e}") from None
    if decomp.unconsumed_tail or not decomp.eof or decomp.unused_data:
        raise LinkError("malformed", "payload is truncated, has trailing bytes or exceeds 64 KiB")
    try:
        obj = strictjson.loads(raw.decode("utf-8"))
    except strictjson.DuplicateKey:
        raise LinkError("malformed", "the claims name a claim twice") from None
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError, JSONDecodeError, huge ints
        raise LinkError("malformed", f"payload is not JSON: {e}") from None
    return Claims.from_json(obj)
