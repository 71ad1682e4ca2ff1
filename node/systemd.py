"""systemd's notify protocol (sd_notify) without libsystemd: READY=1, WATCHDOG=1,
STOPPING=1 and STATUS= as datagrams to $NOTIFY_SOCKET.

Outside systemd (no $NOTIFY_SOCKET) every call is a no-op, so the daemon calls these
unconditionally. The watchdog task pings at half of $WATCHDOG_USEC, and only while the
`healthy` check passes: a wedged event loop or a failed health check stops the pings
and systemd restarts the service (Restart=on-failure)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    """One per daemon. `env` is passed in (default os.environ) so tests can aim it at
    their own socket."""

    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send one datagram of KEY=VALUE lines; False when not under systemd or when the
        socket is gone (never raises: supervision must not take the daemon down)."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as e:
            log.warning("sd_notify to %r failed: %s", self.address, e)
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    async def run_watchdog(self, healthy: Callable[[], bool] = lambda: True) -> None:
        """Ping WATCHDOG=1 every half watchdog interval while healthy(); returns at once
        when systemd asked for no watchdog. Cancel it on shutdown."""
        if not self.enabled or not self.watchdog_interval:
            return
        period = self.watchdog_interval / 2
        while True:
            try:
                ok = healthy()
            except Exception:  # a crashing health check is an unhealthy daemon
                log.exception("health check failed")
                ok = False
            if ok:
                self.watchdog()
            else:
                log.warning("unhealthy: not feeding the systemd watchdog")
            await asyncio.sleep(period)


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):  # abstract namespace socket
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    log.warning("ignoring NOTIFY_SOCKET=%r: not a path or @abstract name", value)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds, or None. WATCHDOG_PID, when set, must be this process (sd_watchdog_enabled)."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000
