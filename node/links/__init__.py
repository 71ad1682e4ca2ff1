"""Link format v1: signed (and optionally sealed) handshake messages. See docs/link-format.md."""

from .claims import KIND_PERMISSION, KINDS, Claims
from .errors import REASONS, LinkError
from .jws import jws_digest
from .link import MAX_LINK_BYTES, PREFIX, SEALED_PREFIX, Link, LinkOpener, OpenedLink, make_link
from .replay import ReplayCache

__all__ = [
    "KINDS",
    "KIND_PERMISSION",
    "MAX_LINK_BYTES",
    "PREFIX",
    "REASONS",
    "SEALED_PREFIX",
    "Claims",
    "Link",
    "LinkError",
    "LinkOpener",
    "OpenedLink",
    "ReplayCache",
    "jws_digest",
    "make_link",
]
