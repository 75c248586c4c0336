"""Door supervision in the terminal config ([door_inputs], [[doors]]) and the control socket's door requests."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse_core.configfile import ConfigError, parse_config
from terminals.config import TerminalConfig
from terminals.control import ControlError, DoorAction, parse_request
from terminals.door_inputs import DoorLines, GpioDoorInputs, SimulatedDoorInputs
from terminals.hardware import make_door_inputs

BASE: dict[str, Any] = {
    "terminal_id": "t-1",
    "site": "demo",
    "data_dir": "/tmp/data",  # noqa: S108 - never written: the config is only parsed
    "server_public_key": "/k/key.pem",
    "seal_key_file": "/k/seal.key",
    "credential_key_file": "/k/credential.key",
    "mqtt": {"host": "broker.lan"},
}


def config(**extra: Any) -> TerminalConfig:
    return parse_config(TerminalConfig, {**BASE, **extra})


def test_doors_are_optional_and_default_to_simulated_inputs() -> None:
    cfg = config()
    assert cfg.doors == [] and cfg.door_inputs.driver == "simulated"
    assert make_door_inputs(cfg) is None


def test_a_door_entry_takes_its_lines_polarity_and_held_limit() -> None:
    cfg = config(
        doors=[{"door": 3, "contact_line": 4, "rex_line": 5, "contact_active_low": True}, {"door": 4, "rex_line": 6}]
    )
    first, second = cfg.doors
    assert (first.held_open_seconds, second.held_open_seconds) == (30, 30)
    inputs = make_door_inputs(cfg)
    assert isinstance(inputs, SimulatedDoorInputs)
    assert inputs.doors == {3: DoorLines(3, 4, 5, True, False), 4: DoorLines(4, None, 6)}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"doors": [{"door": 3}]}, "names neither contact_line nor rex_line"),
        ({"doors": [{"door": 3, "contact_line": 4, "rex_line": 4}]}, "on the same line"),
        ({"doors": [{"door": 3, "contact_line": 4, "held_open_seconds": 0}]}, "greater than 0"),
        ({"doors": [{"door": 3, "contact_line": 4, "held_open_seconds": 7200}]}, "less than or equal to 3600"),
        ({"doors": [{"door": 3, "contact_line": -1}]}, "greater than or equal to 0"),
        ({"doors": [{"door": 3, "contact_line": 4, "wire": "red"}]}, "doors.0.wire = 'red': unknown key"),
        ({"doors": [{"door": 3, "contact_line": 4}, {"door": 3, "rex_line": 5}]}, "door 3 appears twice"),
        (
            {"door_inputs": {"driver": "gpio"}, "doors": [{"door": 3, "contact_line": 4}, {"door": 4, "rex_line": 4}]},
            "GPIO line 4 is both door 4's exit button and door 3's contact",
        ),
        (
            {
                "relay": {"driver": "gpio", "gpio_lines": {"3": 17}},
                "door_inputs": {"driver": "gpio"},
                "doors": [{"door": 3, "contact_line": 17}],
            },
            "GPIO line 17 is both door 3's contact and door 3's relay",
        ),
        (
            {"relay": {"driver": "gpio", "gpio_lines": {"3": 17}}, "doors": [{"door": 4, "rex_line": 5}]},
            "door 4 has an exit button but no relay line",
        ),
        ({"door_inputs": {"driver": "gpio", "debounce_ms": 5000}}, "less than or equal to 1000"),
        ({"door_inputs": {"driver": "serial"}}, "'simulated' or 'gpio'"),
    ],
    ids=[
        "no-input",
        "same-line",
        "zero-held",
        "held-too-long",
        "negative-line",
        "unknown-key",
        "door-twice",
        "inputs-share-line",
        "input-on-relay-line",
        "exit-without-relay-line",
        "debounce-too-long",
        "unknown-driver",
    ],
)
def test_bad_door_supervision_settings_are_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(**extra)
    assert message in info.value.report()


def test_simulated_lines_may_repeat_relay_lines_and_gpio_lines_on_another_chip_too() -> None:
    doors = [{"door": 3, "contact_line": 17}]
    config(relay={"driver": "gpio", "gpio_lines": {"3": 17}}, doors=doors)
    config(
        relay={"driver": "gpio", "gpio_lines": {"3": 17}},
        door_inputs={"driver": "gpio", "gpio_chip": "/dev/gpiochip1"},
        doors=doors,
    )


def test_gpio_door_inputs_are_built_without_importing_gpiod_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gpiod", None)
    cfg = config(door_inputs={"driver": "gpio"}, doors=[{"door": 3, "contact_line": 4}])
    with pytest.raises(RuntimeError, match="gpiod"):
        make_door_inputs(cfg)
    assert GpioDoorInputs.__module__ == "terminals.door_inputs"


@pytest.mark.parametrize("action", ["open", "close", "exit"])
def test_the_control_socket_takes_door_actions(action: str) -> None:
    request = f'{{"op": "door", "door": 3, "action": "{action}"}}'.encode()
    assert parse_request(request, lambda: None) == DoorAction(3, action)  # type: ignore[arg-type]
    assert parse_request(b'{"op": "door", "action": "open"}', lambda: 7) == DoorAction(7, "open")


@pytest.mark.parametrize(
    ("request_line", "message"),
    [
        (b'{"op": "door", "door": 3, "action": "slam"}', '"action": "open", "close" or "exit"'),
        (b'{"op": "door", "door": 3}', '"action"'),
        (b'{"op": "door", "action": "open"}', 'name the "door"'),
    ],
)
def test_the_control_socket_refuses_bad_door_actions(request_line: bytes, message: str) -> None:
    with pytest.raises(ControlError, match=message):
        parse_request(request_line, lambda: None)
