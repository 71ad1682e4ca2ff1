"""The client side of the file drop: sends a link through another node's drop folder DIR
(shared folder, sync tool, or a local home) and waits for its reply.

It writes DIR/inbox/.NAME.tmp, renames it to NAME (a fresh, unique name), then waits
for DIR/outbox/NAME (the reply) or DIR/reasons/NAME (the refusal)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from ...peers import Peer
from ..errors import TransportError


def new_drop_name() -> str:
    return f"{time.time_ns()}-{uuid.uuid4().hex[:12]}.link"


class FileDropClient:
    """`poll`: seconds between looks for the reply; for the first `fast_for` seconds
    (where a local node's reply lands, some 20 ms after the link) every `fast_poll`."""

    def __init__(self, folder: Path, *, poll: float = 0.05, fast_poll: float = 0.004, fast_for: float = 1.0):
        self.folder = Path(folder)
        self.poll = poll
        self.fast_poll = min(fast_poll, poll)
        self.fast_for = fast_for

    async def request(self, peer: Peer | None, link_text: str, timeout: float = 60.0) -> str:
        """ClientTransport.request; the peer is implied by the folder (None is fine)."""
        inbox, outbox, reasons = self.folder / "inbox", self.folder / "outbox", self.folder / "reasons"
        if not inbox.is_dir():
            raise TransportError(
                "unreachable", f"{inbox} is not a directory (is {self.folder} a node's home or drop folder?)"
            )
        name = new_drop_name()
        tmp = inbox / f".{name}.tmp"
        tmp.write_text(link_text.strip() + "\n", encoding="ascii")
        os.rename(tmp, inbox / name)
        reply_path, reason_path = outbox / name, reasons / name
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if reply_path.exists():
                text = reply_path.read_text().strip()
                reply_path.unlink(missing_ok=True)  # consumed
                return text
            if reason_path.exists():
                try:
                    info = json.loads(reason_path.read_text())
                except (OSError, ValueError):
                    info = {}
                raise TransportError(
                    str(info.get("reason", "rejected")), str(info.get("message", f"see {reason_path}"))
                )
            fast = time.monotonic() - started < self.fast_for
            await asyncio.sleep(self.fast_poll if fast else self.poll)
        try:
            (inbox / name).unlink()  # not taken yet: withdraw it so it is not handled later
        except FileNotFoundError:
            pass
        raise TransportError(
            "timeout",
            f"no reply in {outbox} within {timeout:.0f} s (is the node running with the file drop enabled?)",
        )
