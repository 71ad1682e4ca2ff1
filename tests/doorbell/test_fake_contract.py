"""The fake gpiod keeps to the real library's contract: every name, parameter, field and
enum member the node uses exists in both with the same shape. The real gpiod (PyPI,
installed with the node) is imported for this; an upgrade that changes what the node
relies on fails here, not on a device."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "gpiod" / "__init__.py"


@pytest.fixture
def both():
    for name in [m for m in sys.modules if m == "gpiod" or m.startswith("gpiod.")]:
        sys.modules.pop(name)
    import gpiod as real

    assert "fake" not in real.__version__, "the real gpiod must be installed (pyproject dependency)"
    spec = importlib.util.spec_from_file_location(
        "fake_gpiod", FAKE, submodule_search_locations=[str(FAKE.parent)]
    )
    fake = importlib.util.module_from_spec(spec)
    sys.modules["fake_gpiod"] = fake
    spec.loader.exec_module(fake)
    yield real, fake
    sys.modules.pop("fake_gpiod", None)
    for name in [m for m in sys.modules if m.startswith("fake_gpiod.")]:
        sys.modules.pop(name)


def params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_functions_and_methods_the_node_calls_have_the_same_parameters(both):
    real, fake = both
    assert params(real.request_lines) == params(fake.request_lines)
    assert params(real.is_gpiochip_device) == params(fake.is_gpiochip_device)
    for name in ("line_offset_from_id", "request_lines", "close"):
        assert params(getattr(real.Chip, name)) == params(getattr(fake.Chip, name)), name
    for name in ("wait_edge_events", "read_edge_events", "release", "get_value"):
        assert params(getattr(real.LineRequest, name)) == params(getattr(fake.LineRequest, name)), name


def test_settings_fields_enums_and_events_match(both):
    real, fake = both
    assert [f.name for f in dataclasses.fields(real.LineSettings)] == [
        f.name for f in dataclasses.fields(fake.LineSettings)
    ]
    for enum in ("Direction", "Edge", "Bias", "Drive", "Value"):
        assert [m.name for m in getattr(real.line, enum)] == [m.name for m in getattr(fake.line, enum)], enum
    assert [m.name for m in real.EdgeEvent.Type] == [m.name for m in fake.EdgeEvent.Type]
    fields = ("event_type", "timestamp_ns", "line_offset", "global_seqno", "line_seqno")
    assert params(real.EdgeEvent.__init__)[1:] == list(fields) == params(fake.EdgeEvent.__init__)[1:]
