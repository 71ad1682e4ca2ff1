"""A small typed-settings model for config.toml (node/config.py declares the sections).

It keeps the contract the node relied on from pydantic, which it replaces here because
it cost a daemon 8 MiB and every CLI command ~100 ms for ~40 scalar fields:
- a section is a class of annotated fields `name: type = Field(default, description=...,
  ge=, gt=, le=)`; types are str, int, float, bool, Literal[...], list[one of those] or
  another section;
- unknown keys are errors; every problem is reported with its dotted location;
- values are checked on assignment too, so code that sets a field cannot store garbage;
- lax conversions as pydantic's lax mode does them for TOML's scalars: an integral float
  or a numeric string for an int, an int for a float, true/false/1/0/yes/no/on/off for
  a bool; nothing turns a number into a string;
- `model_validate`, `model_dump`, `model_fields`, `model_validate_json`,
  `model_dump_json` for the callers that used them."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

S = TypeVar("S", bound="Section")
_MISSING: Any = object()
_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


class ValidationError(ValueError):
    """One or more fields are wrong; `errors()` lists them as {"loc", "msg"}."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]):
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(loc)}: {msg}" for loc, msg in problems))

    def errors(self) -> list[dict[str, object]]:
        return [{"loc": loc, "msg": msg} for loc, msg in self.problems]


@dataclass
class FieldInfo:
    default: Any = _MISSING
    default_factory: Callable[[], Any] | None = None
    description: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    annotation: Any = None
    validators: list[Callable[[Any], Any]] = field(default_factory=list)

    def make_default(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default


def Field(
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    description: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    return FieldInfo(default, default_factory, description, ge, gt, le)


def field_validator(name: str) -> Callable[[Any], Any]:
    """Marks a classmethod `(cls, value) -> value` (raising ValueError) as a check of
    field `name`, run after its type check."""

    def mark(method: Any) -> Any:
        target = method.__func__ if isinstance(method, classmethod) else method
        setattr(target, "_validates", name)  # noqa: B010
        return method

    return mark


class Section:
    model_fields: ClassVar[dict[str, FieldInfo]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls)
        fields: dict[str, FieldInfo] = {}
        for name, annotation in hints.items():
            if get_origin(annotation) is ClassVar or name.startswith("_"):
                continue
            info = cls.__dict__.get(name, _MISSING)
            info = info if isinstance(info, FieldInfo) else FieldInfo(default=info)
            info.annotation = annotation
            fields[name] = info
            if name in cls.__dict__:
                delattr(cls, name)  # instances hold the values
        for value in cls.__dict__.values():
            target = value.__func__ if isinstance(value, classmethod) else value
            checked = getattr(target, "_validates", None)
            if checked in fields:
                fields[checked].validators.append(getattr(cls, target.__name__))
        cls.model_fields = fields

    def __init__(self, **values: Any):
        self._build(values, ())

    def _build(self, values: dict[str, Any], loc: tuple[str, ...]) -> None:
        problems: list[tuple[tuple[str, ...], str]] = []
        for key in values:
            if key not in self.model_fields:
                problems.append(((*loc, str(key)), "Extra inputs are not permitted"))
        for name, info in self.model_fields.items():
            if name in values:
                try:
                    value = _convert(info, values[name], (*loc, name))
                except ValidationError as e:
                    problems += e.problems
                    continue
            elif info.default is _MISSING and info.default_factory is None:
                problems.append(((*loc, name), "Field required"))
                continue
            else:
                value = info.make_default()
            object.__setattr__(self, name, value)
        if problems:
            raise ValidationError(problems)

    def __setattr__(self, name: str, value: Any) -> None:
        info = self.model_fields.get(name)
        if info is None:
            raise ValidationError([((name,), "Object has no attribute; unknown fields are not permitted")])
        object.__setattr__(self, name, _convert(info, value, (name,)))

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable (as pydantic's were)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.model_fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.model_fields)
        return f"{type(self).__name__}({inner})"

    @classmethod
    def model_validate(cls: type[S], data: object) -> S:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ValidationError([((), f"Input should be a table of {cls.__name__} fields")])
        obj = cls.__new__(cls)
        obj._build(data, ())
        return obj

    @classmethod
    def model_validate_json(cls: type[S], text: str | bytes) -> S:
        return cls.model_validate(json.loads(text))

    def model_dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.model_fields:
            value = getattr(self, name)
            out[name] = value.model_dump() if isinstance(value, Section) else value
        return out

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump())


def _convert(info: FieldInfo, value: Any, loc: tuple[str, ...]) -> Any:
    kind = info.annotation
    try:
        if isinstance(kind, type) and issubclass(kind, Section):
            if isinstance(value, kind):
                return value
            if not isinstance(value, dict):
                raise ValueError(f"Input should be a table ([{'.'.join(loc)}])")
            section = kind.__new__(kind)
            section._build(value, loc)
            return section
        value = _scalar(kind, value)
        _bounds(info, value)
        for check in info.validators:
            value = check(value)
        return value
    except ValidationError:
        raise
    except ValueError as e:
        raise ValidationError([(loc, str(e))]) from None


def _scalar(kind: Any, value: Any) -> Any:
    if get_origin(kind) is list:
        (item,) = get_args(kind) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ValueError("Input should be a valid list")
        out = []
        for i, element in enumerate(value):
            try:
                out.append(element if item is Any else _scalar(item, element))
            except ValueError as e:
                raise ValueError(f"item {i}: {e}") from None
        return out
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if value not in choices or type(value) is bool:
            raise ValueError("Input should be " + " or ".join(repr(c) for c in choices))
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("Input should be a valid boolean")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError("Input should be a valid integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError("Input should be a valid integer")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError("Input should be a valid number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError("Input should be a valid string")
    raise TypeError(f"unsupported settings type {kind!r}")


def _bounds(info: FieldInfo, value: Any) -> None:
    if info.ge is not None and value < info.ge:
        raise ValueError(f"Input should be greater than or equal to {info.ge}")
    if info.gt is not None and value <= info.gt:
        raise ValueError(f"Input should be greater than {info.gt}")
    if info.le is not None and value > info.le:
        raise ValueError(f"Input should be less than or equal to {info.le}")
