"""Manual transport: a person carries the link. The request is printed (one line on
stdout, instructions on stderr) and the reply link is read from stdin."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque
from typing import ClassVar, TextIO

from ..peers import Peer
from . import TransportError

IDLE_EXIT = 1.0  # seconds the reader thread lingers with no request waiting


class _LineReader:
    """The one thread that reads an input stream, for every request in the process: a
    read still blocked after a timeout must not compete with the next request's read
    (a reply pasted then would go to whichever thread got the line)."""

    _by_stream: ClassVar[dict[int, _LineReader]] = {}
    _registry_lock = threading.Lock()

    def __init__(self, inp: TextIO):
        self.inp = inp
        self._lock = threading.Lock()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[str]] | None = None
        self._lines: deque[str] = deque()  # read for a request that had given up
        self._wanted = threading.Event()  # read only on demand: at most one line ahead
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, inp: TextIO) -> _LineReader:
        with cls._registry_lock:
            reader = cls._by_stream.get(id(inp))
            if reader is None or reader.inp is not inp:
                reader = cls._by_stream[id(inp)] = cls(inp)
            return reader

    def wait_line(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[str]:
        """A future for the next non-empty line (one read after an earlier request gave up
        comes first: the opener then says whether it answers this request)."""
        future: asyncio.Future[str] = loop.create_future()
        with self._lock:
            if self._lines:
                future.set_result(self._lines.popleft())
                return future
            if self._error is not None:
                future.set_exception(self._error)
                return future
            self._waiter = (loop, future)
            self._wanted.set()
            if self._thread is None:
                # a daemon thread: a read still blocked at exit never holds the process
                self._thread = threading.Thread(target=self._run, name="manual-stdin", daemon=True)
                self._thread.start()
        return future

    def forget(self, future: asyncio.Future[str]) -> None:
        with self._lock:
            if self._waiter is not None and self._waiter[1] is future:
                self._waiter = None

    def _run(self) -> None:
        while True:
            if not self._wanted.wait(IDLE_EXIT):
                with self._lock:
                    if not self._wanted.is_set():  # nobody asks: end; the next request starts one
                        self._thread = None
                        return
                continue
            try:
                line = self.inp.readline()
                error = (
                    None
                    if line
                    else TransportError("unreachable", "stdin closed before a reply link was pasted")
                )
            except Exception as e:  # the stream broke: every later request gets this too
                line, error = "", TransportError("unreachable", f"cannot read stdin: {e}")
            if error is None and not line.strip():
                continue
            with self._lock:
                waiter, self._waiter = self._waiter, None
                self._wanted.clear()
                if error is not None:
                    self._error = error
                elif waiter is None:
                    self._lines.append(line.strip())
            if waiter is not None:
                self._deliver(waiter, line.strip(), error)
            if error is not None:
                return

    def _deliver(
        self,
        waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[str]],
        line: str,
        error: Exception | None,
    ) -> None:
        loop, future = waiter

        def keep() -> None:  # the request gave up meanwhile: the line is not lost
            if error is None:
                with self._lock:
                    self._lines.appendleft(line)

        def settle() -> None:
            if future.done():
                keep()
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result(line)

        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # that request's event loop is closed
            keep()


class ManualTransport:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, inp: TextIO | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.inp = inp or sys.stdin

    async def request(self, peer: Peer | None, link_text: str, timeout: float) -> str:
        name = peer.name if peer is not None else "the peer"
        self.err.write(
            f"Send this link to {name} (e.g. `media-node link inspect` or its inbox),\n"
            f"then paste its reply link here within {timeout:.0f} s:\n"
        )
        self.err.flush()
        self.out.write(link_text.strip() + "\n")
        self.out.flush()
        reader = _LineReader.of(self.inp)
        reply = reader.wait_line(asyncio.get_running_loop())
        try:
            return await asyncio.wait_for(reply, timeout)
        except TimeoutError:
            raise TransportError("timeout", f"no reply pasted within {timeout:.0f} s") from None
        finally:
            reader.forget(reply)


__all__ = ["ManualTransport"]
