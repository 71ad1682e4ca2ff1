"""Transports: how links arrive at the daemon and how replies leave (file drop, MQTT,
manual). The daemon side hands each incoming link text to a `Handler` (the
CallManager's `handle_link`) and sends the reply back where the request came from; the
client side (`ClientTransport.request`, node/transports/base.py) sends one link and
waits for the reply link."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import error_info, public_error
from .errors import TRANSPORT_REASONS, TransportError

# CallManager.handle_link: a link text in, the signed reply link out (None: no reply);
# raises LinkError (or any other error) for a refused link.
Handler = Callable[[str], Awaitable["str | None"]]

__all__ = ["TRANSPORT_REASONS", "Handler", "TransportError", "error_info", "public_error"]
