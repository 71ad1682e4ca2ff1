"""The file drop's folders and the names the node writes in them.

  inbox/NAME     what someone drops (the node takes it; nothing else is ever written here)
  work/NAME      taken, being handled (the claim: one rename, so one taker)
  outbox/NAME    the reply to inbox/NAME
  done/NAME      handled (a reply, if any, is in outbox/)
  rejected/NAME  refused; reasons/NAME says why (JSON)
  reasons/NAME   the reason for rejected/NAME: a folder of its own, so no name a user
                 drops can collide with a reason file

A name already taken in done/ (or rejected/ + reasons/) gets the next free NAME.1,
NAME.2, ...; a name too long for the suffix is cut at its end (in bytes) to make room,
so any legal name (up to the folder's NAME_MAX, any bytes) has a place and nothing the
node writes ever replaces a file someone dropped. The node's own temporary files are
`.mnode-tmp-<hex>`: inbox names starting with '.' are never taken, so no user file can
have such a name in outbox/ or reasons/, the only folders where they live."""

from __future__ import annotations

import errno
import os
import stat
import uuid
from pathlib import Path

TMP_PREFIX = ".mnode-tmp-"
# Room reserved for a reply before its link is handled (links are at most 64 KiB).
REPLY_RESERVE = 64 * 1024 + 4096


def name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def fits(folder: Path, name: str) -> bool:
    return len(os.fsencode(name)) <= name_max(folder)


def free_name(folders: list[Path], name: str) -> str:
    """`name` if no folder in `folders` has it, else the first free NAME.N (cut at its
    end, in bytes, when NAME.N would be longer than the folders allow)."""
    limit = min(name_max(f) for f in folders)

    def free(candidate: str) -> bool:
        return not any(os.path.lexists(f / candidate) for f in folders)

    if len(os.fsencode(name)) <= limit and free(name):
        return name
    raw = os.fsencode(name)
    n = 1
    while True:
        suffix = f".{n}".encode()
        candidate = os.fsdecode(raw[: limit - len(suffix)] + suffix)
        if free(candidate):
            return candidate
        n += 1


def new_tmp(folder: Path) -> Path:
    return folder / f"{TMP_PREFIX}{uuid.uuid4().hex}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target under a short temporary name and rename over it: a
    reader sees all or nothing, whatever the length of the target's name."""
    tmp = new_tmp(path.parent)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def clean_tmp(folders: list[Path]) -> None:
    """Remove the node's own temporary files a stop left behind (only `.mnode-tmp-*`:
    a name no dropped file can have in these folders)."""
    for folder in folders:
        for name in os.listdir(folder):
            if name.startswith(TMP_PREFIX):
                _unlink(folder / name)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class ReplySlot:
    """A reply's place, made before its link is handled: if the reply could not be
    written, the link is refused *before* the handler uses its nonce or sets up a call.
    `reserve` proves the name fits, the target is not in the way, and the space is there
    (the temporary file is allocated to the size of the largest link); `commit` writes
    the reply and renames it into place."""

    def __init__(self, target: Path):
        self.target = target
        self._tmp: Path | None = None
        self._fd: int | None = None

    def reserve(self) -> None:
        """OSError (ENAMETOOLONG, EISDIR, ENOSPC, EACCES, ...) when no reply can go there."""
        folder = self.target.parent
        if not fits(folder, self.target.name):
            raise OSError(errno.ENAMETOOLONG, "the name is too long for the outbox", str(self.target))
        try:
            st = os.lstat(self.target)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(st.st_mode):
                raise OSError(errno.EISDIR, "a folder is in the reply's place", str(self.target))
        self._tmp = new_tmp(folder)
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(self._fd, 0, REPLY_RESERVE)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # no fallocate here: write will tell
                self.release()
                raise

    def commit(self, text: str) -> None:
        if self._fd is None or self._tmp is None:
            raise RuntimeError("commit() before reserve()")
        data = text.encode("ascii") if text.endswith("\n") else (text + "\n").encode("ascii")
        fd, self._fd = self._fd, None
        try:
            done = 0
            while done < len(data):  # into the space reserved, then cut to size
                done += os.pwrite(fd, data[done:], done)
            os.ftruncate(fd, len(data))
            # No fsync: a reply is worth something only while its link is valid (minutes),
            # and the rename alone gives readers all or nothing. It cost a view's first
            # frame ~8 ms here, far more on an SD card.
        finally:
            os.close(fd)
        os.replace(self._tmp, self.target)
        self._tmp = None

    def release(self) -> None:
        """No reply after all (or it failed): the reservation goes away."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._tmp is not None:
            _unlink(self._tmp)
            self._tmp = None
