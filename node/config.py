"""Typed node configuration: config.toml in the home, validated on load.

The model is the single source of truth: `render_default_config()` writes config.toml
from the fields' defaults and descriptions, so every field is documented in the file
the user edits, and docs/configuration.md is generated the same way.

Each section is a msgspec Struct (node/config_network.py, node/config_media.py): the
field's type, bounds and description are its `Annotated[..., Meta(...)]`, a section's
own checks are its `__post_init__`, and `msgspec.convert` validates a whole file in one
pass (pydantic cost a daemon 8 MiB and every short CLI command ~100 ms to import).
Values are checked where they are read (load_config, parse_config); a field assigned
in code is not re-checked, so code sets only values it has validated itself.

The three modules have no `from __future__ import annotations`: msgspec would then
evaluate every annotation's text on the first conversion (~3 ms of each CLI command)."""

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import msgspec
import tomli_w
from msgspec import Meta, Struct, field

from .config_media import CallsSection, DoorbellSection, MediaSection, SnapshotSection
from .config_network import FiledropSection, LinksSection, MqttSection, OverlaySection, WebSection
from .errors import NodeError

__all__ = [
    "CallsSection",
    "Config",
    "DoorbellSection",
    "FiledropSection",
    "LinksSection",
    "MediaSection",
    "MqttSection",
    "NodeSection",
    "OverlaySection",
    "SnapshotSection",
    "WebSection",
    "load_config",
    "parse_config",
    "render_default_config",
    "render_markdown",
]


class NodeSection(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(description="Human name shown in status, events and logs.")] = "media-node"
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"],
        Meta(description="Log level: debug, info, warning or error."),
    ] = "info"


class Config(Struct, forbid_unknown_fields=True):
    node: NodeSection = field(default_factory=NodeSection)
    overlay: OverlaySection = field(default_factory=OverlaySection)
    media: MediaSection = field(default_factory=MediaSection)
    calls: CallsSection = field(default_factory=CallsSection)
    links: LinksSection = field(default_factory=LinksSection)
    filedrop: FiledropSection = field(default_factory=FiledropSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    web: WebSection = field(default_factory=WebSection)
    doorbell: DoorbellSection = field(default_factory=DoorbellSection)
    snapshot: SnapshotSection = field(default_factory=SnapshotSection)


def parse_config(data: object) -> Config:
    """A parsed TOML document -> Config; a NodeError names the first wrong field.

    Lax as TOML users expect: "8080" is an int, "true"/"false" a bool, an integral 2.0
    an int; nothing becomes a string that was not one."""
    try:
        return msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as e:
        raise NodeError(_problem(str(e))) from None


def load_config(path: Path) -> Config:
    """config.toml -> Config; a missing file means all defaults; every error is a NodeError
    naming the file (and the field, when one is wrong)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")  # an editor's byte-order mark is not TOML's concern
    except (FileNotFoundError, NotADirectoryError):
        return Config()
    except OSError as e:
        raise NodeError(f"{path}: cannot read it: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise NodeError(f"{path}: not UTF-8 text (byte {e.start}); TOML files are UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise NodeError(f"{path}: not valid TOML: {e}") from None
    try:
        return parse_config(data)
    except NodeError as e:
        raise NodeError(f"{path}: {e}") from None


_AT = re.compile(r"(?P<msg>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]*)`")
_OWN = re.compile(r"(?P<key>[a-z_]+): (?P<msg>.*)", re.S)  # a section's __post_init__ names its field


def _problem(error: str) -> str:
    """msgspec's "Expected `int` >= 1 - at `$.calls.max_calls`" as "calls.max_calls:
    expected `int` >= 1"; an unknown key or a section's own check is named as a field."""
    at = _AT.fullmatch(error)
    assert at is not None  # the pattern matches any text
    msg, where = at["msg"], [at["path"]] if at["path"] else []
    if unknown := _UNKNOWN.fullmatch(msg):
        guess = _closest(unknown["key"], ".".join(where))
        where.append(unknown["key"])
        msg = "unknown key" + (f"; did you mean `{guess}`?" if guess else "")
        msg += " (docs/configuration.md lists the fields; a typo is never ignored)"
    elif own := _OWN.fullmatch(msg):
        where.append(own["key"])
        msg = own["msg"]
    elif msg.startswith("Invalid enum value") and (choices := _choices(*where)):
        msg += "; use one of: " + ", ".join(choices)
    elif msg.startswith("Expected `object`"):
        msg = msg.replace("`object`", "a table ([section])", 1)
    path = ".".join(where) or "config"
    return f"{path}: {msg[:1].lower()}{msg[1:]}"


def _types(struct: Any) -> dict[str, Any]:
    """Field name -> annotated type of a section (or of Config: its sections)."""
    return {f.name: f.type for f in msgspec.structs.fields(struct)}


def _closest(key: str, section: str = "") -> str:
    """The field (or, with no section, the section) of Config that `key` is a likely typo of."""
    import difflib

    sections = _types(Config)
    if section and section not in sections:
        return ""
    names = list(_types(sections[section])) if section else list(sections)
    return next(iter(difflib.get_close_matches(key, names, n=1, cutoff=0.75)), "")


def _choices(path: str) -> list[str]:
    """The values the Literal field at `path` ("section.name") takes, if it is one."""
    section, _, name = path.partition(".")
    sections = _types(Config)
    if section not in sections:
        return []
    kind = _types(sections[section]).get(name)
    values = get_args(get_args(kind)[0]) if get_args(kind) else ()  # Annotated[Literal[...], Meta]
    return [str(v) for v in values]


def _described(section: type[Struct]) -> list[tuple[str, str]]:
    """(name, description) of every field of a section, in order."""
    out = []
    for f in msgspec.structs.fields(section):
        described = [m.description for m in get_args(f.type)[1:] if isinstance(m, Meta) and m.description]
        out.append((f.name, described[0] if described else ""))
    return out


_KINDS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _kind(annotation: object) -> str:
    """A field's type and bounds in words, from its Annotated[type, Meta]: "integer,
    1 to 64", "number, over 0 up to 60", "one of: debug, info", "list of strings"."""
    kind, *metas = get_args(annotation) or (annotation,)
    if get_args(kind) and getattr(kind, "__origin__", None) is Literal:
        return "one of: " + ", ".join(str(v) for v in get_args(kind))
    if getattr(kind, "__origin__", None) is list:
        return f"list of {_KINDS[get_args(kind)[0]]}s"
    bounds = []
    for m in metas:
        if isinstance(m, Meta) and m.ge is not None and m.le is not None:
            bounds.append(f"{_number(m.ge)} to {_number(m.le)}")
        elif isinstance(m, Meta):
            low = f"at least {_number(m.ge)}" if m.ge is not None else ""
            low = f"over {_number(m.gt)}" if m.gt is not None else low
            high = f"up to {_number(m.le)}" if m.le is not None else ""
            bounds.append(" ".join(w for w in (low, high) if w))
    return ", ".join([_KINDS[kind], *(b for b in bounds if b)])


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _toml(name: str, value: object) -> str:
    return tomli_w.dumps({name: value}).rstrip("\n")


def _sections(config: Config) -> list[tuple[str, Struct]]:
    return [(f.name, getattr(config, f.name)) for f in msgspec.structs.fields(Config)]


def render_default_config(config: Config | None = None) -> str:
    """config.toml text: every field with its description as a comment above it."""
    lines = [
        "# media-node configuration. Every field is optional; shown values are the defaults.",
        "# Unknown keys are rejected, so a typo is an error rather than a silent default.",
        "",
    ]
    for section_name, section in _sections(config or Config()):
        lines.append(f"[{section_name}]")
        if doc := (type(section).__doc__ or "").strip():
            lines.append(f"# {doc}")
        for name, description in _described(type(section)):
            lines += [f"# {description}", _toml(name, getattr(section, name))]
        lines.append("")
    return "\n".join(lines)


def render_markdown() -> str:
    """docs/configuration.md: every section and field, from the model itself."""
    lines = [
        "# Configuration: config.toml",
        "",
        "`media-node init` writes `config.toml` into the home with every field below, commented.",
        "Every field is optional; unknown keys are errors (a typo never falls back to a default).",
        "Generated from `node/config.py` (sections in `node/config_network.py` and",
        "`node/config_media.py`) by `python -m node.config`; a test keeps it current.",
        "",
    ]
    for section_name, section in _sections(Config()):
        lines += [f"## [{section_name}]", "", "| field | type | default | meaning |", "|---|---|---|---|"]
        kinds = {f.name: _kind(f.type) for f in msgspec.structs.fields(type(section))}
        for name, description in _described(type(section)):
            default = _toml(name, getattr(section, name)).split(" = ", 1)[1].replace("|", "\\|")
            lines.append(f"| `{name}` | {kinds[name]} | `{default}` | {description} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
