"""Why a call could not be made or was refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from ..errors import NodeError

T = TypeVar("T")


class CallError(NodeError):
    """A call could not be made or was refused: `code` is stable (busy, timeout, ...)."""

    exit_code = 5

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


async def within(seconds: float, what: str, aw: Awaitable[T]) -> T:
    """`aw`, or CallError('timeout') naming `what` after `seconds`."""
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise CallError("timeout", f"{what} took longer than {seconds:.0f} s") from None


__all__ = ["CallError", "within"]
