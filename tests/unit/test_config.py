import tomllib

import pytest

from node.config import Config, load_config, render_default_config
from node.errors import NodeError


def test_rendered_default_is_valid_and_documents_every_field():
    text = render_default_config()
    assert Config.model_validate(tomllib.loads(text)) == Config()
    for section_name in Config.model_fields:
        section = getattr(Config(), section_name)
        for name, field in type(section).model_fields.items():
            assert f"\n{name} = " in text, name
            assert f"# {field.description}\n{name} = " in text, name


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
