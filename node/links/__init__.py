"""Link format v1: signed (and optionally sealed) handshake messages. See docs/link-format.md."""

from .claims import KIND_PERMISSION, KINDS, Claims
from .errors import REASONS, LinkError
from .jws import jws_digest
from .link import MAX_LINK_BYTES, PREFIX, SEALED_PREFIX, Link, LinkOpener, OpenedLink, make_link
from .replay import ReplayCache

__all__ = [
    "Claims", "KINDS", "KIND_PERMISSION", "LinkError", "REASONS", "Link", "LinkOpener",
    "OpenedLink", "make_link", "ReplayCache", "jws_digest", "MAX_LINK_BYTES", "PREFIX",
    "SEALED_PREFIX",
]
