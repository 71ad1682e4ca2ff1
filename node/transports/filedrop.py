"""File-drop transport: links arrive as files in the home's inbox/, replies leave as
files of the same name in outbox/.

Daemon side (`FileDropWatcher`): inotify (through watchdog) tells us a name changed. A
file renamed into inbox/ (write-then-rename) is complete and is taken at once; a file
written in place is taken only once it has settled (no event and no change of
size/mtime for `settle` seconds). Names starting with '.' or ending in .tmp/.part/~ are
someone's unfinished write and are left alone. A file renamed in while a file of the
same name is still queued or being handled is picked up by the next rescan (`rescan`
seconds). A handler that takes longer than HANDLE_TIMEOUT is abandoned and the file is
rejected with reason `timeout`, so a hung call set-up cannot hold a worker forever.

Exactly once: the file is claimed by renaming it inbox/ -> work/ (atomic, so only one
worker can win), handled, its reply written atomically to outbox/, and only then moved
to done/ (or to rejected/ beside NAME.reason.json). Files left in work/ by a crash are
finished at the next start: if their reply is already in outbox/ they go to done/,
otherwise they are handled again and the persistent replay cache refuses a link that was
already used, so nothing is lost and nothing is processed twice.

Client side (`FileDropClient`): writes DIR/inbox/.NAME.tmp, renames it to NAME, then waits
for DIR/outbox/NAME (the reply) or DIR/rejected/NAME.reason.json (the refusal)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from ..home import Home
from ..links.link import MAX_LINK_BYTES
from ..peers import Peer
from . import Handler, TransportError, error_info, public_error

log = logging.getLogger(__name__)


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


_UNFINISHED_SUFFIXES = (".tmp", ".part", ".partial", ".swp", "~")
_REPLY_TMP = ".mnode-tmp"
HANDLE_TIMEOUT = 120.0  # seconds a link may be in hand before it is rejected as `timeout`


def is_unfinished(name: str) -> bool:
    """A name a writer is still filling (the write-then-rename convention)."""
    return name.startswith(".") or name.endswith(_UNFINISHED_SUFFIXES)


def write_atomic(path: Path, text: str, durable: bool = True) -> None:
    """Write beside the target and rename over it: a reader sees all or nothing.
    `durable` also flushes it to disk before the rename, so it survives a power cut."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{_REPLY_TMP}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


class _Settling:
    """What the watcher knows about a name it is waiting on."""

    __slots__ = ("changed", "writing")

    def __init__(self, writing: bool):
        self.changed = False  # an event arrived since the last look
        self.writing = writing  # a writer has it open (no close event since)


class _InboxEvents(FileSystemEventHandler):
    """Runs on watchdog's thread: only forwards names to the event loop."""

    def __init__(self, watcher: FileDropWatcher):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write", "deleted"):
            return
        path = event.dest_path if event.event_type == "moved" else event.src_path
        path = os.fsdecode(path)
        if os.path.dirname(path) != self.watcher.inbox_str:
            return
        # created/modified: a writer has it open; closed (IN_CLOSE_WRITE) or moved in: written.
        # A rename into inbox/ is the atomic hand-over (write-then-rename): nothing follows
        # it, so it needs no settling (this saves ~0.6 s of every file-drop call set-up).
        writing = event.event_type in ("created", "modified")
        self.watcher.notify_threadsafe(os.path.basename(path), writing, event.event_type == "moved")


class FileDropWatcher:
    """Watches `home.inbox` and hands each settled file to `handler` exactly once.

    `settle`: seconds a file must stay unchanged before it is taken; `rescan`: seconds
    between full inbox scans (a safety net should the kernel's event queue overflow);
    `empty_grace`: how long an empty file may stay empty before it is refused;
    `max_open`: how long a file a writer keeps open (no close event yet) is waited for;
    `concurrency`: links handled at the same time."""

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
        on_event: Callable[[dict[str, object]], None] | None = None,
        handle_timeout: float = HANDLE_TIMEOUT,
    ):
        self.home = home
        self.handle_timeout = handle_timeout
        self.handler = handler
        self.on_event = on_event  # rejections, e.g. to MQTT events (file name and reason only)
        self.settle = settle
        self.rescan = rescan
        self.empty_grace = empty_grace
        self.max_open = max_open
        self.concurrency = concurrency
        self.inbox_str = os.fsdecode(os.path.abspath(home.inbox))
        self.counts = {"done": 0, "rejected": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: BaseObserver | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._settling: dict[str, _Settling] = {}
        self._queued: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        for d in self.home.drop_dirs():
            d.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        self._clean_reply_tmp()
        # Files a crash left in work/ are finished before anything new is taken.
        for name in sorted(os.listdir(self.home.work)):
            await self._recover(name)
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
        if self._observer is not None:
            self._observer.stop()
            await asyncio.to_thread(self._observer.join, 5)
            self._observer = None
        for task in [*self._workers, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._tasks, return_exceptions=True)
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
            await asyncio.sleep(0.05)

    # --- noticing files ----------------------------------------------------------------

    def notify_threadsafe(self, name: str, writing: bool, renamed_in: bool = False) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._notice, name, writing, renamed_in)
            except RuntimeError:  # loop closing: the next start's scan picks the file up
                pass

    def _notice(self, name: str, writing: bool = False, renamed_in: bool = False) -> None:
        if is_unfinished(name) or name in self._queued:
            return
        state = self._settling.get(name)
        if renamed_in and state is None:
            self._queued.add(name)
            self._queue.put_nowait(name)
            return
        if state is not None:
            state.changed = True  # still being written: look again later
            state.writing = writing
            return
        self._settling[name] = _Settling(writing=writing)
        self._spawn(self._settle(name))

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
            self._notice(name)

    async def _rescanner(self) -> None:
        while True:
            await asyncio.sleep(self.rescan)
            self._scan()

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, name: str) -> None:
        """Queue `name` once it has stopped changing."""
        path = os.path.join(self.inbox_str, name)
        seen = None
        first = time.monotonic()
        state = self._settling[name]
        try:
            while True:
                await asyncio.sleep(self.settle)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    return  # renamed away or deleted by its writer
                sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
                changed, state.changed = state.changed, False
                if sig != seen or changed:
                    seen = sig
                    continue
                waited = time.monotonic() - first
                if state.writing and waited < self.max_open:
                    continue  # its writer has not closed it yet
                if st.st_size == 0 and stat.S_ISREG(st.st_mode) and waited < self.empty_grace:
                    continue  # created empty; its content may still come
                break
        finally:
            self._settling.pop(name, None)
        self._queued.add(name)
        await self._queue.put(name)

    # --- handling ----------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            name = await self._queue.get()
            self._busy += 1
            try:
                await self._take(name)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one file stop the watcher
                log.exception("file drop: unexpected failure on %r", name)
            finally:
                self._busy -= 1
                self._queued.discard(name)

    async def _take(self, name: str) -> None:
        src = os.path.join(self.inbox_str, name)
        dst = self.home.work / name
        if dst.exists() or os.path.lexists(dst):
            # The same name is still being handled: look again once that one is done.
            asyncio.get_running_loop().call_later(self.settle, self._notice, name)
            return
        try:
            os.rename(src, dst)  # the claim: exactly one rename wins
        except FileNotFoundError:
            return
        await self._process(name)

    async def _process(self, name: str, *, recovered: bool = False) -> None:
        path = self.home.work / name
        try:
            text = self._read(path)
            try:
                reply = await asyncio.wait_for(self.handler(text), self.handle_timeout)
            except TimeoutError:
                raise TransportError(
                    "timeout", f"the node did not finish handling the link within {self.handle_timeout:.0f} s"
                ) from None
            if reply is not None:
                if not isinstance(reply, str):
                    raise TypeError(f"the handler returned {type(reply).__name__}, not a link")
                # A reply is worth something only while its link is valid (minutes), and
                # the rename alone gives readers all or nothing: no fsync on this path,
                # where it cost a view's first frame ~8 ms (an SD card: far more).
                text = reply if reply.endswith("\n") else reply + "\n"
                write_atomic(self.home.outbox / name, text, durable=False)
        except asyncio.CancelledError:
            raise  # stays in work/: finished at the next start
        except Exception as e:  # every refusal is recorded, none kills the watcher
            info = error_info(e)  # reason.json stays on this device: the details help there
            info["public"] = public_error(e)["message"]
            if recovered and info["reason"] == "replayed":
                info["message"] = (
                    "the node stopped while handling this file and its link was "
                    "already used, so it was not handled twice"
                )
            self._finish(name, ok=False, info=info)
            return
        self._finish(name, ok=True)

    def _read(self, path: Path) -> str:
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

    def _finish(self, name: str, *, ok: bool, info: dict[str, str] | None = None) -> None:
        folder = self.home.done if ok else self.home.rejected
        target = _free_name(folder, name)
        if not ok:
            info = dict(info or {})
            public = info.pop("public", None) or info.get("message")
            record = {**info, "file": name, "at": int(time.time())}
            write_atomic(folder / f"{target}.reason.json", json.dumps(record) + "\n")
            log.warning("file drop: rejected %r: %s: %s", name, record.get("reason"), record.get("message"))
            if self.on_event is not None:
                try:
                    # Events may leave the device (MQTT): a fixed text, never the detail.
                    self.on_event(
                        {
                            "event": "rejected",
                            "transport": "file",
                            "file": name,
                            "reason": record.get("reason"),
                            "message": public,
                        }
                    )
                except Exception:
                    log.exception("file drop: event callback failed")
        os.rename(self.home.work / name, folder / target)
        self.counts["done" if ok else "rejected"] += 1

    # --- crash recovery ------------------------------------------------------------------

    async def _recover(self, name: str) -> None:
        path = self.home.work / name
        try:
            taken_at = os.lstat(path).st_ctime_ns  # the rename into work/ set it
            reply = self.home.outbox / name
            if reply.exists() and reply.stat().st_mtime_ns >= taken_at:
                log.info("file drop: %r was answered before a stop; moving it to done/", name)
                self._finish(name, ok=True)
                return
            log.info("file drop: finishing %r left in work/ by a stop", name)
            await self._process(name, recovered=True)
        except Exception:
            log.exception("file drop: could not recover %r from work/", name)

    def _clean_reply_tmp(self) -> None:
        for folder in (self.home.outbox, self.home.rejected, self.home.done):
            for name in os.listdir(folder):
                if name.endswith(_REPLY_TMP):
                    try:
                        os.unlink(folder / name)
                    except OSError:
                        pass


def _free_name(folder: Path, name: str) -> str:
    """`name`, or `name.N` when an earlier file of that name is already there (never
    overwrite what an operator may still want to read)."""
    if not os.path.lexists(folder / name):
        return name
    n = 1
    while os.path.lexists(folder / f"{name}.{n}"):
        n += 1
    return f"{name}.{n}"


# --- client side ----------------------------------------------------------------------


def new_drop_name() -> str:
    return f"{time.time_ns()}-{uuid.uuid4().hex[:12]}.link"


class FileDropClient:
    """Sends a link through another node's drop folder DIR (shared folder, sync tool,
    or a local home) and waits for its reply."""

    def __init__(self, folder: Path, *, poll: float = 0.05):
        self.folder = Path(folder)
        self.poll = poll

    async def request(self, peer: Peer | None, link_text: str, timeout: float = 60.0) -> str:
        """ClientTransport.request; the peer is implied by the folder (None is fine)."""
        inbox, outbox, rejected = self.folder / "inbox", self.folder / "outbox", self.folder / "rejected"
        if not inbox.is_dir():
            raise TransportError(
                "unreachable", f"{inbox} is not a directory (is {self.folder} a node's home or drop folder?)"
            )
        name = new_drop_name()
        tmp = inbox / f".{name}.tmp"
        tmp.write_text(link_text.strip() + "\n", encoding="ascii")
        os.rename(tmp, inbox / name)
        reply_path, reason_path = outbox / name, rejected / f"{name}.reason.json"
        deadline = time.monotonic() + timeout
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
            await asyncio.sleep(self.poll)
        try:
            (inbox / name).unlink()  # not taken yet: withdraw it so it is not handled later
        except FileNotFoundError:
            pass
        raise TransportError(
            "timeout",
            f"no reply in {outbox} within {timeout:.0f} s (is the node running with the file drop enabled?)",
        )


__all__ = ["FileDropClient", "FileDropWatcher", "is_unfinished", "new_drop_name", "write_atomic"]
