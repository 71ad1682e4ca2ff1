"""A signed trigger: a peer allowed `trigger` asks this node to call one of its peers
(the peer named by the link's `tgt`, which must be allowed `call`). It works over any
transport the link arrived on; the outgoing call goes through the transport the node
places its calls with (MQTT). The reply is a signed `result` naming the call, or a
signed error. Controllers that cannot sign (Home Assistant) use cmd/call instead, on a
topic the broker lets them alone write (docs/operations.md)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import NodeError
from ..links import OpenedLink
from .errors import CallError

if TYPE_CHECKING:
    from .manager import CallManager

log = logging.getLogger(__name__)


async def serve_trigger(manager: CallManager, opened: OpenedLink) -> str:
    """The reply to a verified trigger link (its sender is allowed `trigger`)."""
    sender = opened.peer
    if sender is None:  # the daemon's opener always has the allowlist
        raise ValueError("a trigger from a sender outside the allowlist")
    try:
        target = manager.peers.by_id(opened.claims.tgt)
    except NodeError:
        target = None
    if target is None or not target.may("call"):
        return manager.error_reply(
            opened, sender, "no-permission", "the peer to call is not in this node's allowlist with 'call'"
        )
    transport = manager.outgoing
    if transport is None:
        return manager.error_reply(
            opened, sender, "unavailable", "this node places calls over MQTT, which is not enabled"
        )
    try:
        call = await manager.call(target, transport)
    except CallError as e:
        return manager.error_reply(opened, sender, e.code, e.message)
    except NodeError as e:
        log.error("trigger from %s: calling %s failed: %s", sender.name, target.name, e)
        return manager.error_reply(
            opened, sender, "unavailable", "the call could not be placed (see this node's log)"
        )
    log.info("trigger from %s: calling %s (call %s)", sender.name, target.name, call.id)
    return manager.sign(
        "result", sender, ofh=opened.digest, res={"peer": target.name, "call": call.id}, sealed=opened.sealed
    ).sent
