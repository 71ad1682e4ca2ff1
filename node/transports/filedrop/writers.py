"""Is someone still writing this file? The two answers the watcher trusts: the name (the
write-then-rename convention) and the kernel (a read lease is refused on a file open
for writing)."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat

_UNFINISHED_SUFFIXES = (".tmp", ".part", ".partial", ".swp", "~")
_F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
_F_SETSIG = getattr(fcntl, "F_SETSIG", 10)


def is_unfinished(name: str) -> bool:
    """A name a writer is still filling (the write-then-rename convention)."""
    return name.startswith(".") or name.endswith(_UNFINISHED_SUFFIXES)


def open_for_writing(path: str) -> bool | None:
    """Whether any process has `path` open for writing, from the kernel: a read lease is
    refused (EAGAIN) on such a file. None where it cannot tell (not the file's owner
    without CAP_LEASE, a filesystem without leases, not a regular file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        # Should a writer open the file in the instant the lease is held, the kernel
        # signals the holder: SIGIO by default, which would end the process. SIGURG's
        # default is to ignore it (set per descriptor: no process-wide state changes).
        fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
        fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        return False
    except OSError as e:
        return True if e.errno == errno.EAGAIN else None
    finally:
        os.close(fd)


__all__ = ["is_unfinished", "open_for_writing"]
