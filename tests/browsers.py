"""Drive Debian's headless browsers from tests: `Chromium` over the DevTools protocol
(`--remote-debugging-pipe`: no port, so it works inside any network namespace) and
`Firefox` over WebDriver BiDi (its websocket, reached from inside the namespace).

Both take `argv_prefix` (e.g. `["ip", "netns", "exec", NS]`, or nothing for this
machine's own namespace), run with a throw-away profile, and offer the same small API:
`open(url)`, `evaluate(js)` (awaits promises, returns the JSON value; a JS exception
raises BrowserError) and `close()`. Use as context managers.

    with Chromium(profile_dir) as browser:
        browser.open("http://127.0.0.1:8000/page.html")
        sdp = browser.evaluate("makeOffer()")
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import websocket  # websocket-client


class BrowserError(RuntimeError):
    """The browser failed to start, a command failed, or the page threw."""


def _find(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise BrowserError(f"none of {names} is installed (apt-get install chromium firefox-esr)")


class Chromium:
    """Headless Chromium driven over the DevTools protocol through fds 3 and 4."""

    def __init__(self, profile_dir: Path, argv_prefix: Sequence[str] = (), extra_args: Sequence[str] = ()):
        profile_dir.mkdir(parents=True, exist_ok=True)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # A shell puts the pipe ends on fds 3 and 4, where Chromium looks for them.
        argv = [
            *argv_prefix,
            "bash",  # dash cannot redirect from fds above 9
            "-c",
            f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}',
            _find("chromium", "chromium-browser"),
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile_dir}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            *(["--no-sandbox"] if os.geteuid() == 0 else []),  # Chromium refuses to sandbox as root
            *extra_args,
            "about:blank",
        ]

        self._log = open(profile_dir / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            close_fds=True,
            pass_fds=(to_browser_r, from_browser_w),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._session = ""
        self.profile_dir = profile_dir
        try:
            targets = self.command("Target.getTargets", timeout=30)["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            self._session = self.command(
                "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}, browser=True
            )["sessionId"]
            self.command("Page.enable")
            self.command("Runtime.enable")
        except Exception:
            self.close()
            raise

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(
        self, method: str, params: dict | None = None, *, browser: bool = False, timeout: float = 30
    ) -> dict:
        """One DevTools command (to the attached page unless `browser`); its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session and not browser:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise BrowserError(f"Chromium exited: {self.log()[-2000:]}")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def open(self, url: str, timeout: float = 30) -> None:
        self.command("Page.navigate", {"url": url}, timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load")
            time.sleep(0.05)

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        result = self.command(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"the page threw: {text}")
        return result.get("result", {}).get("value")

    def grant(self, origin: str, permissions: Sequence[str] = ("audioCapture",)) -> None:
        """What a user's "Allow" click does for `origin` (e.g. "http://127.0.0.1:8000")."""
        self.command(
            "Browser.grantPermissions", {"origin": origin, "permissions": list(permissions)}, browser=True
        )

    def reset_permissions(self) -> None:
        self.command("Browser.resetPermissions", browser=True)

    def log(self) -> str:
        path = self.profile_dir / "chromium.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.command("Browser.close", browser=True, timeout=5)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()


# --- Firefox (WebDriver BiDi) -------------------------------------------------------

_CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(name: str | None) -> Iterator[None]:
    """Run the block with this thread in network namespace `name` (sockets made inside
    stay there); None: no change."""
    if name is None:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{name}") as target:
        if libc.setns(target.fileno(), _CLONE_NEWNET) != 0:
            raise BrowserError(f"setns({name}) failed: errno {ctypes.get_errno()}")
        try:
            yield
        finally:
            libc.setns(home.fileno(), _CLONE_NEWNET)


class Firefox:
    """Headless Firefox ESR driven over WebDriver BiDi on a loopback port in `netns`."""

    def __init__(
        self,
        profile_dir: Path,
        netns: str | None = None,
        prefs: dict[str, Any] | None = None,
        port: int = 9222,
    ):
        profile_dir.mkdir(parents=True, exist_ok=True)
        user_js = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in (prefs or {}).items())
        (profile_dir / "user.js").write_text(user_js)
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.profile_dir = profile_dir
        self._log = open(profile_dir / "firefox.log", "wb")
        self.proc = subprocess.Popen(
            [
                *prefix,
                _find("firefox-esr", "firefox"),
                "--headless",
                "--no-remote",
                "--profile",
                str(profile_dir),
                "--remote-debugging-port",
                str(port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._next_id = 0
        try:
            self._ws = self._connect(netns, port, time.monotonic() + 60)
            self.command("session.new", {"capabilities": {}})
            tree = self.command("browsingContext.getTree", {})
            self.context = tree["contexts"][0]["context"]
        except Exception:
            self.close()
            raise

    def _connect(self, netns: str | None, port: int, deadline: float) -> websocket.WebSocket:
        while True:
            try:
                with in_netns(netns):
                    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                # Firefox refuses an Origin header on its BiDi socket.
                return websocket.create_connection(
                    f"ws://127.0.0.1:{port}/session", socket=sock, suppress_origin=True, timeout=30
                )
            except (OSError, websocket.WebSocketException):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise BrowserError(f"Firefox's BiDi socket did not open: {self.log()[-2000:]}") from None
                time.sleep(0.2)

    def __enter__(self) -> Firefox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self, method: str, params: dict, timeout: float = 30) -> dict:
        self._next_id += 1
        self._ws.settimeout(timeout)
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == self._next_id:
                if reply.get("type") == "error":
                    raise BrowserError(f"{method}: {reply.get('error')}: {reply.get('message')}")
                return reply["result"]

    def open(self, url: str, timeout: float = 30) -> None:
        self.command(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}, timeout
        )

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        result = self.command(
            "script.evaluate",
            {
                "expression": f"(async () => JSON.stringify(await ({expression})))()",
                "target": {"context": self.context},
                "awaitPromise": True,
            },
            timeout,
        )
        if result.get("type") == "exception":
            raise BrowserError(f"the page threw: {result['exceptionDetails'].get('text')}")
        value = result["result"].get("value")
        return json.loads(value) if isinstance(value, str) else None

    def log(self) -> str:
        path = self.profile_dir / "firefox.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            with contextlib.suppress(Exception):
                self.command("browser.close", {}, timeout=5)
            with contextlib.suppress(Exception):
                ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
