"""Persistent replay cache: a nonce is accepted once until its link expires.

SQLite (stdlib) gives atomic check-and-insert that survives a crash mid-way: a link
processed once is refused afterwards even if the daemon died just after taking it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3


class ReplayCache:
    def __init__(self, path: Path, skew: int = 30):
        self.path = path
        self.skew = skew
        self._lock = threading.Lock()
        # Private from the start: whoever could write it could replay links.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        import sqlite3  # here: `link make` and `link inspect` without a cache skip its ~2 ms

        self._replayed = sqlite3.IntegrityError
        self._db: sqlite3.Connection = sqlite3.connect(
            str(path), timeout=10, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS seen (nonce TEXT PRIMARY KEY, sender TEXT, exp INTEGER)")

    def claim(self, sender: str, nonce: str, exp: int, now: float | None = None) -> bool:
        """Record the nonce; False if it was already recorded (a replay)."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE exp < ?", (int(now) - self.skew,))
            try:
                self._db.execute("INSERT INTO seen VALUES (?, ?, ?)", (f"{sender}:{nonce}", sender, exp))
            except self._replayed:
                return False
        return True

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
