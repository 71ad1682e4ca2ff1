"""What overlay providers read and run on this machine: a small file (a config, a
peer table) read with a size bound, and a local tool (nebula-cert, mcc) run without a
shell within a timeout; each failure is an OverlayError that says what to fix. Also
the error for a peer whose allowlist entry lacks the provider's binding."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from . import OverlayError

if TYPE_CHECKING:
    from ..peers import Peer


def read_bounded(path: Path, limit: int, what: str, *, denied: str, missing: str = "") -> str:
    """The text of `path` (at most `limit` bytes). `denied`: how to grant read access;
    `missing`: the message when the file does not exist (else the OSError's)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        if missing:
            raise OverlayError(missing) from None
        raise OverlayError(f"cannot read {what} {path}: no such file") from None
    except PermissionError:
        raise OverlayError(f"cannot read {what} {path}: permission denied ({denied})") from None
    except OSError as e:
        raise OverlayError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(raw) > limit:
        raise OverlayError(f"{what} {path} is larger than {limit} bytes")
    return raw.decode(errors="replace")


async def run_tool(
    argv: list[str], timeout: float, *, name: str, missing: str, slow: str = ""
) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of `argv`, stdin closed. OverlayError `cannot run
    NAME (reason): MISSING` when it cannot start, `NAME did not finish within T s[: SLOW]`
    (and the process is killed) when it takes longer than `timeout`."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as e:
        raise OverlayError(f"cannot run {name} ({e.strerror or e}): {missing}") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        hint = f": {slow}" if slow else ""
        raise OverlayError(f"{name} did not finish within {timeout:g} s{hint}") from None
    return proc.returncode or 0, out, err


def missing_binding(peer: Peer, binding: str, option: str) -> OverlayError:
    """`peer` has no `binding` (e.g. nebula_cert) in the allowlist; `option`: the
    `peers add` option and value that set it (e.g. `--nebula-cert NAME`)."""
    return OverlayError(
        f"peer {peer.name!r} has no {binding} in the allowlist "
        f"(media-node peers add {peer.name} ID {option} --replace)"
    )


__all__ = ["missing_binding", "read_bounded", "run_tool"]
