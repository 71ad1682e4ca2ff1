"""JSON as links read it: a duplicate key in any object is refused. Python's json (like
many parsers) keeps the last of two equal keys, another parser may keep the first, so
`{"alg":"none","alg":"EdDSA"}` could mean two things to two readers; a link must mean
one thing to every reader (RFC 7515 §4: header parameter names must be unique)."""

from __future__ import annotations

import json


class DuplicateKey(ValueError):
    pass


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey("an object names the same key twice")
        out[key] = value
    return out


def loads(data: bytes | str) -> object:
    """json.loads, refusing duplicate keys (DuplicateKey, a ValueError)."""
    return json.loads(data, object_pairs_hook=_pairs)
