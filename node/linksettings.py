"""The four config values the link commands (`link make`, `link inspect`) need, without
paying for the full config model on every call.

Validating config.toml means importing pydantic and building the whole model, which
costs a short CLI command several times its own work. So the first command to validate
a config keeps the values it needs in a memo beside it (`.config-checked.json` in the
home), keyed by a hash of the config file's bytes and of the code that validates it.
Later commands read the memo when the key still matches; any change to the file (or
an upgrade of the validation code) misses the memo and validates in full again, so a
broken config is refused exactly as `load_config` refuses it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .home import Home

MEMO_NAME = ".config-checked.json"
_VALIDATOR = Path(__file__).with_name("config.py")


@dataclass(frozen=True)
class LinkSettings:
    ttl: int
    clock_skew: int
    seal: bool
    provider: str


def _key(config_file: Path) -> str:
    digest = hashlib.sha256()
    digest.update(_VALIDATOR.read_bytes())
    try:
        digest.update(b"file\0" + config_file.read_bytes())
    except FileNotFoundError:
        digest.update(b"missing\0")
    return digest.hexdigest()


def link_settings(home: Home) -> LinkSettings:
    memo = home.path / MEMO_NAME
    key = _key(home.config_file)
    try:
        saved = json.loads(memo.read_text())
        if saved.get("key") == key:
            return LinkSettings(**saved["links"])
    except (OSError, ValueError, TypeError, KeyError):
        pass  # no memo yet, or an unreadable one: validate
    from .config import load_config

    config = load_config(home.config_file)
    settings = LinkSettings(
        ttl=config.links.ttl,
        clock_skew=config.links.clock_skew,
        seal=config.links.seal,
        provider=config.overlay.provider,
    )
    _save(memo, {"key": key, "links": asdict(settings)})
    return settings


def _save(memo: Path, data: dict[str, object]) -> None:
    """Best effort: a home this user cannot write simply validates every time."""
    tmp = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, memo)
    except OSError:
        tmp.unlink(missing_ok=True)
