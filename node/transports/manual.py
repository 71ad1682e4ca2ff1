"""Manual transport: a person carries the link. The request is printed (one line on
stdout, instructions on stderr) and the reply link is read from stdin."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TextIO

from . import TransportError


class ManualTransport:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, inp: TextIO | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.inp = inp or sys.stdin

    async def request(self, peer, link_text: str, timeout: float) -> str:
        name = getattr(peer, "name", "the peer")
        self.err.write(f"Send this link to {name} (e.g. `media-node link inspect` or its inbox),\n"
                       f"then paste its reply link here within {timeout:.0f} s:\n")
        self.err.flush()
        self.out.write(link_text.strip() + "\n")
        self.out.flush()
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[str] = loop.create_future()

        def read() -> None:  # a daemon thread: a read still blocked at exit never holds the process
            try:
                result = self._read_reply()
                loop.call_soon_threadsafe(lambda: reply.done() or reply.set_result(result))
            except Exception as e:
                loop.call_soon_threadsafe(lambda err=e: reply.done() or reply.set_exception(err))

        threading.Thread(target=read, name="manual-stdin", daemon=True).start()
        try:
            return await asyncio.wait_for(reply, timeout)
        except asyncio.TimeoutError:
            raise TransportError("timeout", f"no reply pasted within {timeout:.0f} s") from None

    def _read_reply(self) -> str:
        while True:
            line = self.inp.readline()
            if not line:
                raise TransportError("unreachable", "stdin closed before a reply link was pasted")
            if line.strip():
                return line.strip()


__all__ = ["ManualTransport"]
