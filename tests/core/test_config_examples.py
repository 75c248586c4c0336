"""The commented examples under config/ are valid configs, so the documentation cannot drift."""

from __future__ import annotations

import pytest

from gatehouse_core.configfile import load_config
from gatehouse_core.configtypes import MqttConfig
from mobile_api.config import MobileApiConfig
from server.config import HttpConfig, ServerConfig, SyncConfig
from terminals.config import TerminalConfig
from tests.support import REPO

CONFIG_DIR = REPO / "config"


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("server.example.toml", ServerConfig),
        ("terminal.example.toml", TerminalConfig),
        ("mobile_api.example.toml", MobileApiConfig),
    ],
)
def test_example_is_valid(name, model):
    config = load_config(model, CONFIG_DIR / name)
    assert config.mode == "production" if hasattr(config, "mode") else config.mqtt.tls


def test_every_config_field_is_described():
    for model in (ServerConfig, TerminalConfig, MobileApiConfig, HttpConfig, MqttConfig, SyncConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
