"""Noticing files in the inbox and deciding when each is complete.

inotify (through watchdog) tells the watcher a name changed; a full scan every `rescan`
seconds is the safety net should the kernel's event queue overflow (and finds what was
there at start). A file renamed into inbox/ (write-then-rename) is complete and is
taken at once. A file written in place is taken once no writer has it open and it has
not changed for `settle` seconds. "Open" is the kernel's answer where it can give one
(a read lease cannot be had on a file open for writing: this survives a restart of the
node in the middle of a slow write), else the last inotify event (created/modified: open,
closed: written). A scan never changes what the events said. A file still open after
`max_open` seconds is taken and refused as `still-open` (kept, with its reason, in
rejected/); an empty one is refused as `empty` after `empty_grace`.

Names starting with '.' or ending in .tmp/.part/.partial/.swp/~ are someone's unfinished
write and are never taken nor deleted; one untouched for longer than `max_open` is
logged once (it stays in the inbox until its writer renames or removes it)."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Coroutine
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ...home import Home
from .. import Handler
from ..errors import TransportError
from .folders import clean_tmp
from .handling import EventSink, FileHandling
from .writers import is_unfinished, open_for_writing

log = logging.getLogger("node.transports.filedrop")

HANDLE_TIMEOUT = 120.0  # seconds a link may be in hand before it is rejected as `timeout`


class _QuietStop(logging.Filter):
    """watchdog logs an ERROR when an inotify event races the observer's stop; it is
    harmless (the next start rescans the inbox), so keep it out of operators' logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


_QUIET_STOP = _QuietStop()


def _quiet_watchdog_stop() -> None:
    """Installed when a watcher starts (not at import: importing a module must not
    change the process's logging); adding the same filter twice is a no-op."""
    logging.getLogger("watchdog.observers.inotify").addFilter(_QUIET_STOP)


class _Settling:
    """What the watcher knows about a name it is waiting on."""

    __slots__ = ("changed", "writing")

    def __init__(self, writing: bool):
        self.changed = False  # an event arrived since the last look
        self.writing = writing  # the last event said a writer has it open


class _InboxEvents(FileSystemEventHandler):
    """Runs on watchdog's thread: only forwards names to the event loop."""

    def __init__(self, watcher: FileDropWatcher):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write", "deleted"):
            return
        path = os.fsdecode(event.dest_path if event.event_type == "moved" else event.src_path)
        if os.path.dirname(path) != self.watcher.inbox_str:
            return
        # created/modified: a writer has it open; closed (IN_CLOSE_WRITE) or moved in: written.
        # A rename into inbox/ is the atomic hand-over (write-then-rename): nothing follows
        # it, so it needs no settling (this saves ~0.6 s of every file-drop call set-up).
        writing = event.event_type in ("created", "modified")
        self.watcher.notify_threadsafe(os.path.basename(path), writing, event.event_type == "moved")


class FileDropWatcher:
    """Watches `home.inbox` and hands each complete file to `handler` exactly once.

    `settle`: seconds a file must stay unchanged before it is taken; `rescan`: seconds
    between full inbox scans; `empty_grace`: how long an empty file may stay empty;
    `max_open`: how long a file a writer keeps open is waited for; `concurrency`: links
    handled at the same time. Every timing may be small (tests make a "slow" writer
    cost milliseconds)."""

    def __init__(
        self,
        home: Home,
        handler: Handler,
        *,
        settle: float = 0.3,
        rescan: float = 5.0,
        empty_grace: float = 10.0,
        max_open: float = 30.0,
        concurrency: int = 4,
        on_event: EventSink | None = None,
        handle_timeout: float = HANDLE_TIMEOUT,
    ):
        self.home = home
        self.files = FileHandling(home, handler, handle_timeout)
        self.on_event = on_event  # rejections, e.g. to MQTT events (reason and name digest only)
        self.settle = settle
        self.rescan = rescan
        self.empty_grace = empty_grace
        self.max_open = max_open
        self.concurrency = concurrency
        self.inbox_str = os.fsdecode(os.path.abspath(home.inbox))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: Any = None  # watchdog's Observer (untyped)
        self._queue: asyncio.Queue[tuple[str, TransportError | None]] = asyncio.Queue()
        self._settling: dict[str, _Settling] = {}
        self._queued: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0
        self._stale_logged: set[str] = set()
        self._timers: set[asyncio.TimerHandle] = set()  # "look again" for names still in hand

    @property
    def counts(self) -> dict[str, int]:
        return self.files.counts

    @property
    def on_event(self) -> EventSink | None:
        return self.files.on_event

    @on_event.setter
    def on_event(self, sink: EventSink | None) -> None:
        self.files.on_event = sink

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        for d in self.home.drop_dirs():
            d.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        clean_tmp([self.home.outbox, self.home.reasons])
        # Files a stop left in work/ are finished before anything new is taken.
        for name in sorted(os.listdir(self.home.work)):
            await self.files.recover(name)
        _quiet_watchdog_stop()
        self._observer = Observer()
        self._observer.schedule(_InboxEvents(self), self.inbox_str, recursive=False)
        self._observer.daemon = True
        self._observer.start()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"filedrop-worker-{i}") for i in range(self.concurrency)
        ]
        self._workers.append(asyncio.create_task(self._rescanner(), name="filedrop-rescan"))
        self._scan()  # files present at start (and any written while the observer started)
        log.info("file drop: watching %s", self.inbox_str)

    async def stop(self) -> None:
        """Nothing of the watcher runs once this returns: events and timers that come
        from now on are dropped (the next start scans the inbox), and a file being
        handled stays in work/ (the next start finishes it)."""
        self._loop = None
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
        await self._cancel_tasks()  # before the first wait, so no new file is taken meanwhile
        if observer is not None:
            await asyncio.to_thread(observer.join, 5)
        await self._cancel_tasks()  # none expected (_loop is None): a last check
        self._settling.clear()
        self._queued.clear()
        self._queue = asyncio.Queue()

    async def _cancel_tasks(self, every: float = 1.0, tries: int = 10) -> None:
        """Cancel the workers and settle tasks and wait for them, cancelling again each
        `every` seconds: a cancel can be lost (one swallowed by code the handler calls),
        and stop() must not wait forever for a task that went back to waiting for work."""
        pending = {*self._workers, *self._tasks}
        for _ in range(tries):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=every)
            if pending:
                log.warning("file drop: %d task(s) still running after a cancel; again", len(pending))
        if pending:
            log.error("file drop: %d task(s) did not stop: %s", len(pending), pending)
        self._workers.clear()
        self._tasks.clear()

    async def __aenter__(self) -> FileDropWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def healthy(self) -> bool:
        """For the service watchdog: the inotify thread and every worker are alive."""
        return (
            self._observer is not None
            and self._observer.is_alive()
            and bool(self._workers)
            and not any(t.done() for t in self._workers)
        )

    async def drained(self, timeout: float) -> None:
        """Wait until nothing is settling, queued or being handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._settling or self._queued or self._busy or self._has_candidates():
            if time.monotonic() > deadline:
                raise TimeoutError(f"file drop not drained after {timeout} s")
            await asyncio.sleep(0.02)

    # --- noticing files ----------------------------------------------------------------

    def notify_threadsafe(self, name: str, writing: bool, renamed_in: bool = False) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._notice, name, writing, renamed_in)
            except RuntimeError:  # loop closing: the next start's scan picks the file up
                pass

    def _notice(self, name: str, writing: bool | None = None, renamed_in: bool = False) -> None:
        """An event (`writing` True/False) or a scan (None: it knows nothing new)."""
        if self._loop is None or is_unfinished(name) or name in self._queued:
            return  # stopped (an event or timer that raced the stop), never taken, or queued
        state = self._settling.get(name)
        if state is not None:
            if writing is not None:  # a scan must not undo what the events said
                state.changed = True
                state.writing = writing
            return
        if renamed_in:
            if os.path.lexists(os.path.join(self.inbox_str, name)):  # not renamed away again
                self._enqueue(name)
            return
        self._settling[name] = _Settling(writing=bool(writing))
        self._spawn(self._settle(name))

    def _enqueue(self, name: str, refuse: TransportError | None = None) -> None:
        self._queued.add(name)
        self._queue.put_nowait((name, refuse))

    def _has_candidates(self) -> bool:
        try:
            return any(not is_unfinished(n) for n in os.listdir(self.inbox_str))
        except OSError:
            return False

    def _scan(self) -> None:
        try:
            names = os.listdir(self.inbox_str)
        except OSError as e:
            log.error("file drop: cannot list %s: %s", self.inbox_str, e)
            return
        for name in sorted(names):
            if is_unfinished(name):
                self._note_stale(name)
            else:
                self._notice(name)

    def _note_stale(self, name: str) -> None:
        if name in self._stale_logged:
            return
        try:
            age = time.time() - os.lstat(os.path.join(self.inbox_str, name)).st_mtime
        except OSError:
            return
        if age > self.max_open:
            self._stale_logged.add(name)
            log.warning(
                "file drop: %r has been an unfinished name for %.0f s; it is left alone "
                "(rename it to a name without a leading '.' or a .tmp/.part suffix to hand it over)",
                name,
                age,
            )

    async def _rescanner(self) -> None:
        while True:
            await asyncio.sleep(self.rescan)
            self._scan()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, name: str) -> None:
        """Queue `name` once it is complete (or refused as still open)."""
        path = os.path.join(self.inbox_str, name)
        seen = None
        first = time.monotonic()
        state = self._settling[name]
        refuse = None
        try:
            while True:
                await asyncio.sleep(self.settle)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    return  # renamed away or deleted by its writer
                sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
                changed, state.changed = state.changed, False
                waited = time.monotonic() - first
                # Only a regular file has a writer to wait for (a folder, link or device
                # is refused as not-a-file as soon as it settles).
                regular = stat.S_ISREG(st.st_mode)
                kernel = open_for_writing(path) if regular else None
                writing = regular and (state.writing if kernel is None else kernel)
                if writing and waited >= self.max_open:
                    refuse = TransportError(
                        "still-open",
                        f"its writer kept it open for more than {self.max_open:.0f} s (max_open): "
                        "a writer closes the file, or writes elsewhere and renames it in",
                    )
                    break
                if sig != seen or changed or writing:
                    seen = sig
                    continue
                if st.st_size == 0 and stat.S_ISREG(st.st_mode) and waited < self.empty_grace:
                    continue  # created empty; its content may still come
                break
        finally:
            self._settling.pop(name, None)
        self._enqueue(name, refuse)

    # --- handling ----------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            name, refuse = await self._queue.get()
            self._busy += 1
            try:
                if self.files.claim(name):
                    await self.files.process(name, refuse=refuse)
                elif self.files.in_hand(name):
                    # The same name is still in hand: look again once that one is done.
                    log.debug("file drop: %r is still in hand; looking again in %.2f s", name, self.settle)
                    self._look_again(name)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one file stop the watcher
                log.exception("file drop: unexpected failure on %r", name)
            finally:
                self._busy -= 1
                self._queued.discard(name)

    def _look_again(self, name: str) -> None:
        """`_notice(name)` after `settle` seconds, unless the watcher stops first."""
        loop = self._loop
        if loop is None:
            return

        def fire() -> None:
            self._timers.discard(timer)
            self._notice(name)

        timer = loop.call_later(self.settle, fire)
        self._timers.add(timer)
