"""The typed-settings model under config.toml (node/settings.py): pydantic's contract as
the node used it — types, bounds, unknown keys, checks on assignment, lax scalars."""

from __future__ import annotations

from typing import Literal

import pytest

from node.settings import Field, Section, ValidationError, field_validator


class Inner(Section):
    port: int = Field(80, ge=1, le=65535, description="a port")
    ratio: float = Field(0.5, gt=0, description="a ratio")
    on: bool = Field(False, description="a switch")
    mode: Literal["a", "b"] = Field("a", description="a choice")
    names: list[str] = Field(default_factory=list, description="names")
    host: str = Field("x", description="a host")

    @field_validator("host")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if " " in value:
            raise ValueError("no spaces")
        return value.strip()


class Outer(Section):
    inner: Inner = Field(default_factory=Inner, description="")


def test_values_convert_like_pydantics_lax_mode():
    got = Outer.model_validate(
        {"inner": {"port": "8080", "ratio": 2, "on": "yes", "mode": "b", "names": ["p"], "host": "h"}}
    )
    assert (got.inner.port, got.inner.ratio, got.inner.on, got.inner.mode) == (8080, 2.0, True, "b")
    assert got.inner.names == ["p"] and Outer().inner.names == [] and Outer().inner.names is not Inner().names
    assert Outer.model_validate(got.model_dump()) == got
    assert Outer.model_validate_json(got.model_dump_json()) == got


def test_every_problem_is_named_with_its_location():
    with pytest.raises(ValidationError) as e:
        Outer.model_validate(
            {"inner": {"port": 0, "ratio": 0, "on": 2, "mode": "c", "names": [1], "host": "a b", "x": 1}}
        )
    where = {".".join(loc) for loc, _ in e.value.problems}
    assert where == {f"inner.{n}" for n in ("port", "ratio", "on", "mode", "names", "host", "x")}
    with pytest.raises(ValidationError, match="valid integer"):
        Inner.model_validate({"port": True})
    with pytest.raises(ValidationError, match="valid string"):
        Inner.model_validate({"host": 5})


def test_assignment_is_checked_too():
    inner = Inner()
    inner.port = 443
    with pytest.raises(ValidationError, match="port"):
        inner.port = 70000
    with pytest.raises(ValidationError):
        inner.nonsense = 1  # type: ignore[attr-defined]
    assert inner.port == 443
