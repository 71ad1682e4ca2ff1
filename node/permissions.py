"""Who may change what this node trusts. Like ssh with `authorized_keys`, the node
refuses a home, allowlist, config, drop folder or replay cache that another local user
could write: whoever can append to peers.toml can grant itself access, whoever can write
the replay cache can replay links, whoever can write work/ can hand the node files it
never took from the inbox.

A path passes when it is owned by the user running the node (or by root, so an operator
may edit with sudo) and neither its group nor others may write it. The inbox alone may
be group-writable, and only for the group `filedrop.group` names (a local drop by
another service); every other rule still holds for it. Each refusal says the exact
chmod (or chown) that fixes it."""

from __future__ import annotations

import grp
import os
import stat
from pathlib import Path

from .errors import NodeError

_GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UnsafePermissions(NodeError):
    """A path another local user could write (or that another user owns)."""


def check_path(path: Path, what: str, *, writable_by_gid: int | None = None) -> None:
    """Refuse `path` if another user owns it or group/others may write it. A missing
    path passes (whoever could create it could only do so through a checked folder)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise UnsafePermissions(
            f"{path} ({what}) is owned by uid {st.st_uid}, not by the user running media-node "
            f"(uid {me}) or root, so that user could change what this node trusts: "
            f"chown {me} {path}"
        )
    mode = stat.S_IMODE(st.st_mode)
    allowed = stat.S_IWGRP if writable_by_gid is not None and st.st_gid == writable_by_gid else 0
    if mode & _GROUP_OTHER_WRITE & ~allowed:
        fixed = mode & ~(_GROUP_OTHER_WRITE & ~allowed)
        who = "others" if allowed or not mode & stat.S_IWGRP else "group/others"
        raise UnsafePermissions(
            f"{path} ({what}) is writable by {who} (mode {mode:04o}), so another local user "
            f"could change what this node trusts: chmod {fixed:o} {path}"
        )


def group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise UnsafePermissions(f"filedrop.group: there is no group {name!r} on this system") from None


def check_allowlist(peers_file: Path) -> None:
    """What every read of the allowlist checks: the file and the folder it lives in."""
    check_path(peers_file.parent, "the node's home")
    check_path(peers_file, "the allowlist")
