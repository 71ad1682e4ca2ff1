"""The node's home directory: where its config, key, peers, replay cache and drop
folders live. One place names every path so no module invents its own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "MEDIA_NODE_HOME"
SERVICE_HOME = Path("/var/lib/media-node")


def default_home() -> Path:
    """$MEDIA_NODE_HOME, else the per-user data dir (the systemd unit sets the env var
    to /var/lib/media-node for the service)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "media-node"


class _InHome:
    """A path inside the home, by name: `config_file = _InHome("config.toml")` makes
    `home.config_file` the Path `home.path / "config.toml"`."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, home: Home, owner: type[Home] | None = None) -> Path:
        return home.path / self.name


@dataclass(frozen=True)
class Home:
    path: Path

    config_file = _InHome("config.toml")
    key_file = _InHome("identity.key")
    peers_file = _InHome("peers.toml")
    replay_db = _InHome("replay.sqlite")
    inbox = _InHome("inbox")
    outbox = _InHome("outbox")
    work = _InHome("work")
    done = _InHome("done")
    rejected = _InHome("rejected")
    # Why each file in rejected/ was refused: reasons/NAME for rejected/NAME (a folder of
    # its own, so no name a user drops can collide with a reason file).
    reasons = _InHome("reasons")
    recordings = _InHome("recordings")

    def drop_dirs(self) -> list[Path]:
        return [self.inbox, self.outbox, self.work, self.done, self.rejected, self.reasons]

    def check_permissions(self, inbox_group: str = "") -> None:
        """Refuse (UnsafePermissions, naming the chmod) a home whose trusted parts another
        local user could write; the inbox may be writable by `inbox_group` alone."""
        from .permissions import check_path, group_id

        gid = group_id(inbox_group) if inbox_group else None
        check_path(self.path, "the node's home")
        check_path(self.config_file, "the config")
        check_path(self.peers_file, "the allowlist")
        for suffix in ("", "-wal", "-shm"):
            check_path(self.replay_db.with_name(self.replay_db.name + suffix), "the replay cache")
        check_path(self.inbox, "the file-drop inbox", writable_by_gid=gid)
        for folder in self.drop_dirs()[1:]:
            check_path(folder, "a file-drop folder")

    def exists(self) -> bool:
        return self.key_file.exists()

    def create(self, name: str | None = None) -> None:
        """Make the folders, a fresh identity key (0600) and a commented config.toml;
        keeps whatever already exists."""
        from .config import Config, render_default_config
        from .identity import Identity

        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for d in self.drop_dirs():
            d.mkdir(exist_ok=True)
        if not self.key_file.exists():
            Identity.generate().save(self.key_file)
        if not self.config_file.exists():
            config = Config()
            if name:
                config.node.name = name
            self.config_file.write_text(render_default_config(config))
