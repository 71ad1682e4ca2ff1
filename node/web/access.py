"""Who may drive `media-node web`: only someone holding its token, from this machine's
loopback, through a page it served itself.

- The token: 32 random bytes (base64url) in the home's `web.token`, mode 0600, so other
  local users cannot read it; it survives restarts (a bookmark keeps working) until
  `--new-token` rotates it. The first page load carries it in the URL (`?token=`); the
  server answers with an HttpOnly, SameSite=Strict cookie, and scripts may send it as
  the `X-Media-Node-Token` header instead.
- Host must be `127.0.0.1:PORT` or `localhost:PORT`: a web site that rebinds a name of
  its own to 127.0.0.1 (DNS rebinding) sends its own name and is refused.
- Origin, when a browser sends one, must be this server's own: another site's page
  cannot post to the API even if the browser would send the cookie."""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from pathlib import Path

from ..errors import NodeError

TOKEN_FILE = "web.token"
COOKIE = "media_node_token"
HEADER = "X-Media-Node-Token"


def load_token(home_path: Path, *, rotate: bool = False) -> str:
    """The home's web token, created (or replaced, with `rotate`) as a 0600 file."""
    path = home_path / TOKEN_FILE
    if path.exists() and not rotate:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise NodeError(f"{path} is readable by others (mode {mode:o}); chmod 600 it or use --new-token")
        token = path.read_text().strip()
        if len(token) >= 32:
            return token
    token = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


class Gate:
    """The three checks, as pure functions of a request's Host, Origin and token."""

    def __init__(self, token: str, port: int):
        self.token = token
        self.port = port

    def hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def host_ok(self, host: str | None) -> bool:
        return host is not None and host.lower() in self.hosts()

    def origin_ok(self, origin: str | None) -> bool:
        if origin is None:  # not a browser page (curl, a script): the token decides
            return True
        return origin.lower() in {f"http://{h}" for h in self.hosts()}

    def token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.token.encode())


__all__ = ["COOKIE", "HEADER", "TOKEN_FILE", "Gate", "load_token"]
