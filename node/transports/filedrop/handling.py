"""One taken file, from the claim to done/ or rejected/ (see folders.py for the names).

Exactly once: an unread reply of the same name is removed from outbox/ (a newer file of
that name replaces it), the file is claimed by renaming it inbox/ -> work/ (atomic: one
taker), its reply's place is reserved, the link is handled, the reply is written to
outbox/ and only then the file moves to done/; a refusal writes reasons/T, then moves
the file to rejected/T. A stop at any point leaves the file in work/: at the next start
a file whose reply is in outbox/ goes to done/, any other is handled again, and the
persistent replay cache refuses a link that was already used, so nothing is lost and
nothing is handled twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Callable

from ...errors import error_info, public_error
from ...home import Home
from ...links.link import MAX_LINK_BYTES
from .. import Handler
from ..errors import TransportError
from .folders import ReplySlot, free_name, write_atomic

log = logging.getLogger("node.transports.filedrop")

EventSink = Callable[[dict[str, object]], None]


def name_digest(name: str) -> str:
    """What an event says of a file name (events leave the device; names are chosen by
    whoever drops): the first 16 hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:16]


class FileHandling:
    """Claims, handles and finishes files for one home (the watcher decides when)."""

    def __init__(self, home: Home, handler: Handler, handle_timeout: float):
        self.home = home
        self.handler = handler
        self.handle_timeout = handle_timeout
        self.on_event: EventSink | None = None
        self.counts = {"done": 0, "rejected": 0}

    def claim(self, name: str) -> bool:
        """inbox/NAME -> work/NAME; False if it is gone or its name is still in hand."""
        if self.in_hand(name):
            return False
        if not os.path.lexists(self.home.inbox / name):
            # Already taken (a name queued twice: the rescan, then a late "moved" event):
            # the reply in outbox/ is that file's, not an earlier one's, so it stays.
            # Claims run one at a time on the watcher's loop, so nothing slips in between.
            return False
        try:
            os.unlink(self.home.outbox / name)  # an unread reply of an earlier file of this name
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            pass  # the reply slot refuses it below, with a reason
        try:
            os.rename(self.home.inbox / name, self.home.work / name)  # exactly one rename wins
        except FileNotFoundError:
            return False
        return True

    def in_hand(self, name: str) -> bool:
        return os.path.lexists(self.home.work / name)

    def answered(self, name: str) -> bool:
        return os.path.lexists(self.home.outbox / name)

    async def process(
        self, name: str, *, recovered: bool = False, refuse: TransportError | None = None
    ) -> None:
        slot = ReplySlot(self.home.outbox / name)
        try:
            if refuse is not None:
                raise refuse
            text = self._read(name)
            try:
                slot.reserve()
            except OSError as e:  # before the handler: the nonce stays unused, no call is set up
                log.error("file drop: cannot write a reply for %r: %s", name, e)
                raise TransportError(
                    "reply-unwritable", f"no reply can be written to {slot.target} ({e.strerror})"
                ) from None
            try:
                # Not asyncio.wait_for: on Python 3.11 it runs the handler as a task of its
                # own and, should a cancel (the watcher's stop) come just as that task
                # finished, returns the result and drops the cancel, so the worker lived on
                # and stop() waited for it forever. Awaited here, a cancel reaches the
                # handler itself (the file stays in work/ for the next start).
                async with asyncio.timeout(self.handle_timeout):
                    reply = await self.handler(text)
            except TimeoutError:
                raise TransportError(
                    "timeout", f"the node did not finish handling the link within {self.handle_timeout:.0f} s"
                ) from None
            if reply is not None:
                if not isinstance(reply, str):
                    raise TypeError(f"the handler returned {type(reply).__name__}, not a link")
                try:
                    slot.commit(reply)
                except OSError as e:  # reserved, yet failed: the link was used, say so
                    log.error("file drop: the reply to %r was lost: %s", name, e)
                    raise TransportError(
                        "reply-unwritable", f"the reply could not be written to {slot.target} ({e.strerror})"
                    ) from None
        except asyncio.CancelledError:
            raise  # stays in work/: finished at the next start
        except Exception as e:  # every refusal is recorded, none kills the watcher
            info = error_info(e)  # the reason file stays on this device: the details help there
            if recovered and info["reason"] == "replayed":
                info["message"] = (
                    "the node stopped while handling this file and its link was "
                    "already used, so it was not handled twice"
                )
            self.finish(name, ok=False, info=info, public=public_error(e)["message"])
            return
        finally:
            slot.release()
        self.finish(name, ok=True)

    def _read(self, name: str) -> str:
        path = self.home.work / name
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise TransportError(
                "not-a-file", "only regular files are read from the inbox (not links, directories or devices)"
            )
        if st.st_size > MAX_LINK_BYTES:
            raise TransportError("oversized", f"{st.st_size} bytes > {MAX_LINK_BYTES}")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_LINK_BYTES + 1)
        if len(data) > MAX_LINK_BYTES:
            raise TransportError("oversized", f"more than {MAX_LINK_BYTES} bytes")
        if not data.strip():
            raise TransportError("empty", "the file holds no link")
        try:
            return data.decode("ascii").strip()
        except UnicodeDecodeError:
            raise TransportError("malformed", "a link is ASCII text") from None

    def finish(self, name: str, *, ok: bool, info: dict[str, str] | None = None, public: str = "") -> None:
        if ok:
            target = free_name([self.home.done], name)
            os.rename(self.home.work / name, self.home.done / target)
            self.counts["done"] += 1
            return
        info = dict(info or {})
        target = free_name([self.home.rejected, self.home.reasons], name)
        record = {**info, "file": name, "at": int(time.time())}
        if target != name:
            record["renamed"] = target
        # The reason first: a stop between the two steps leaves the file in work/ (handled
        # again at the next start), never a file in rejected/ without its reason.
        write_atomic(self.home.reasons / target, (json.dumps(record) + "\n").encode())
        os.rename(self.home.work / name, self.home.rejected / target)
        self.counts["rejected"] += 1
        log.warning("file drop: rejected %r: %s: %s", name, info.get("reason"), info.get("message"))
        if self.on_event is not None:
            try:
                # Events may leave the device (MQTT): the fixed text for the reason, and of
                # the name only a digest and its length.
                self.on_event(
                    {
                        "event": "rejected",
                        "transport": "file",
                        "file_sha256": name_digest(name),
                        "file_bytes": len(os.fsencode(name)),
                        "reason": info.get("reason"),
                        "message": public,
                    }
                )
            except Exception:
                log.exception("file drop: event callback failed")

    async def recover(self, name: str) -> None:
        """A file a stop left in work/ (its claim removed any older reply of its name,
        so a reply in outbox/ is this file's)."""
        try:
            if self.answered(name):
                log.info("file drop: %r was answered before a stop; moving it to done/", name)
                self.finish(name, ok=True)
                return
            log.info("file drop: finishing %r left in work/ by a stop", name)
            await self.process(name, recovered=True)
        except Exception:
            log.exception("file drop: could not recover %r from work/", name)
