"""config.toml: the msgspec model in node/config.py, its errors, and the files rendered from it."""

import tomllib
from typing import get_args

import msgspec
import pytest

from node.config import Config, DoorbellSection, MqttSection, load_config, parse_config, render_default_config
from node.errors import NodeError


def test_rendered_default_is_valid_and_documents_every_field():
    text = render_default_config()
    assert parse_config(tomllib.loads(text)) == Config()
    fields = 0
    for section in msgspec.structs.fields(Config):
        for f in msgspec.structs.fields(section.type):
            (description,) = [m.description for m in get_args(f.type)[1:] if m.description]
            assert description, f.name
            assert f"# {description}\n{f.name} = " in text, f.name
            fields += 1
    assert fields > 60


def test_toml_scalars_convert_laxly_but_never_into_strings():
    got = parse_config({"mqtt": {"port": "8080", "enabled": "true"}, "calls": {"max_calls": 2.0}})
    assert (got.mqtt.port, got.mqtt.enabled, got.calls.max_calls) == (8080, True, 2)
    assert parse_config({"calls": {"answer_timeout": 3}}).calls.answer_timeout == 3.0
    for bad, where in (
        ({"node": {"name": 5}}, "node.name: expected `str`, got `int`"),
        ({"calls": {"max_calls": 2.5}}, "calls.max_calls: expected `int`, got `float`"),
        ({"mqtt": {"port": True}}, "mqtt.port: expected `int`, got `bool`"),
        ({"doorbell": {"call": ["ok", 1]}}, "doorbell.call[1]: expected `str`, got `int`"),
        ({"calls": 5}, "calls: expected a table ([section]), got `int`"),
    ):
        with pytest.raises(NodeError) as e:
            parse_config(bad)
        assert str(e.value) == where


def test_bounds_and_choices_are_named_with_their_location():
    for bad, message in (
        ({"calls": {"max_calls": 0}}, "calls.max_calls: expected `int` >= 1"),
        ({"calls": {"idle_timeout": 0}}, "calls.idle_timeout: expected `float` > 0.0"),
        ({"mqtt": {"port": 70000}}, "mqtt.port: expected `int` <= 65535"),
        ({"node": {"log_level": "loud"}}, "node.log_level: invalid enum value 'loud'; use one of: debug,"),
        ({"media": {"speaker": "hw:0"}}, "media.speaker: 'hw:0': use alsa:DEVICE"),
        ({"doorbell": {"gpio": "a b"}}, "doorbell.gpio: 'a b' is not a GPIO line name"),
        ({"nonsense": {}}, "nonsense: unknown key"),
    ):
        with pytest.raises(NodeError) as e:
            parse_config(bad)
        assert str(e.value).startswith(message), e.value


def test_an_unknown_key_suggests_the_field_it_is_likely_a_typo_of():
    for bad, message in (
        ({"calls": {"max_call": 3}}, "calls.max_call: unknown key; did you mean `max_calls`? ("),
        ({"mqtt": {"controler": []}}, "mqtt.controler: unknown key; did you mean `controllers`? ("),
        ({"callz": {}}, "callz: unknown key; did you mean `calls`? ("),
        ({"calls": {"zzz": 1}}, "calls.zzz: unknown key (docs/configuration.md lists the fields"),
        ({"nonsense": {}}, "nonsense: unknown key (docs/configuration.md lists the fields"),
    ):
        with pytest.raises(NodeError) as e:
            parse_config(bad)
        assert str(e.value).startswith(message), e.value


def test_sections_own_checks_normalise_and_run_when_built_in_code_too():
    assert parse_config({"doorbell": {"gpio": " GPIO17 "}}).doorbell.gpio == "GPIO17"
    assert parse_config({"mqtt": {"host": "[::1]"}}).mqtt.host == "::1"
    with pytest.raises(ValueError, match="not an IP address"):
        MqttSection(host="broker")
    assert DoorbellSection().call == [] and DoorbellSection().call is not DoorbellSection().call


def test_dump_and_json_round_trip():
    config = parse_config({"mqtt": {"controllers": ["ha"], "port": 1883}, "doorbell": {"call": ["door"]}})
    assert parse_config(msgspec.to_builtins(config)) == config
    assert msgspec.json.decode(msgspec.json.encode(config.mqtt), type=MqttSection) == config.mqtt
    assert parse_config(tomllib.loads(render_default_config(config))) == config


def test_missing_file_is_defaults(tmp_path):
    assert load_config(tmp_path / "none.toml") == Config()


def test_unknown_key_is_an_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[calls]\nmax_call = 3\n")
    with pytest.raises(NodeError, match="calls.max_call"):
        load_config(path)


def test_bad_value_names_the_field(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[overlay]\nprovider = "tor"\n')
    with pytest.raises(NodeError, match="overlay.provider"):
        load_config(path)


def test_bad_toml(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[calls\n")
    with pytest.raises(NodeError, match="not valid TOML"):
        load_config(path)


def test_an_unreadable_file_is_a_clear_error_naming_it(tmp_path):
    """Not UTF-8, a directory, no read permission: one NodeError naming the file, never a
    UnicodeDecodeError or OSError traceback out of the daemon."""
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff\xfe[calls]\n")
    with pytest.raises(NodeError, match=f"^{path}: not UTF-8 text"):
        load_config(path)
    path.unlink()
    path.mkdir()
    with pytest.raises(NodeError, match=f"^{path}: cannot read it: Is a directory"):
        load_config(path)


def test_a_byte_order_mark_is_not_a_toml_error(tmp_path):
    """Editors on Windows write a UTF-8 BOM; tomllib calls it an invalid statement."""
    path = tmp_path / "config.toml"
    path.write_bytes("\ufeff[calls]\nmax_calls = 2\n".encode())
    assert load_config(path).calls.max_calls == 2


def test_values_round_trip(tmp_path):
    config = Config()
    config.node.name = 'door "front"'
    config.calls.max_calls = 2
    path = tmp_path / "config.toml"
    path.write_text(render_default_config(config))
    loaded = load_config(path)
    assert loaded.node.name == 'door "front"'
    assert loaded.calls.max_calls == 2


def test_mqtt_host_must_be_an_ip_literal(tmp_path):
    """No DNS, ever: a broker name would need a lookup."""
    path = tmp_path / "config.toml"
    path.write_text('[mqtt]\nhost = "broker.example.org"\n')
    with pytest.raises(NodeError, match="mqtt.host.*not an IP address"):
        load_config(path)
    path.write_text('[mqtt]\nhost = "201:2515:516c:32b7:96d4:f61e:16cd:ffd8"\n')
    assert load_config(path).mqtt.host == "201:2515:516c:32b7:96d4:f61e:16cd:ffd8"


def test_configuration_doc_is_current():
    from pathlib import Path

    from node.config import render_markdown

    doc = Path(__file__).parents[2] / "docs" / "configuration.md"
    assert doc.read_text() == render_markdown(), "run: python -m node.config > docs/configuration.md"


def test_configuration_doc_states_each_fields_type_and_range_as_enforced():
    """docs/configuration.md's type column is what load_config enforces: each stated
    bound is accepted and the value just past it refused, each listed choice accepted."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    section, checked = "", 0
    for line in doc.splitlines():
        if line.startswith("## ["):
            section = line[4:-1]
        if not (row := re.fullmatch(r"\| `(\w+)` \| ([^|]+) \| `[^`]*` \| .* \|", line)):
            continue
        name, kind = row[1], row[2].strip()

        def accepts(value, section=section, name=name):
            try:
                parse_config({section: {name: value}})
            except NodeError as e:
                assert str(e).startswith(f"{section}.{name}: "), e
                return False
            return True

        if kind.startswith("one of: "):
            choices = kind.removeprefix("one of: ").split(", ")
            assert all(accepts(c) for c in choices) and not accepts("not-a-choice"), line
            checked += 1
            continue
        base, _, bounds = kind.partition(", ")
        assert base in ("string", "integer", "number", "boolean", "list of strings"), line
        step = {"integer": 1, "number": 0.001}.get(base)
        for low, high in re.findall(r"(-?[\d.]+) to (-?[\d.]+)", bounds):
            assert accepts(float(low)) and accepts(float(high)), line
            assert not accepts(float(low) - step) and not accepts(float(high) + step), line
            checked += 1
        for word, bound in re.findall(r"(at least|over|up to) (-?[\d.]+)", bounds):
            edge, past = {"at least": (True, -step), "over": (False, 0), "up to": (True, step)}[word]
            assert accepts(float(bound)) is edge, line
            assert past == 0 or not accepts(float(bound) + past), line
            checked += 1
    assert checked > 35
