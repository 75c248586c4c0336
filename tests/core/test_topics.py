"""gatehouse_core.wire.topics: every topic is built and parsed through one strict layout."""

from __future__ import annotations

import pytest
from paho.mqtt.client import topic_matches_sub

from gatehouse_core.wire.topics import (
    Channel,
    TopicError,
    TopicRef,
    all_terminals,
    check_ident,
    parse_topic,
    server_status,
    terminal_topic,
)

BAD_IDENTS = [
    "",
    "+",
    "#",
    "a/b",
    "site/#",
    "north+",
    "North",
    "DOOR-1",
    "-door",
    "door-",
    "-",
    "door_1",
    "door 1",
    "dör",
    "a" * 65,
]


@pytest.mark.parametrize("channel", list(Channel))
def test_build_parse_round_trip(channel: Channel) -> None:
    topic = terminal_topic("north-gate", "door-1", channel)
    assert topic == f"gatehouse/north-gate/terminals/door-1/{channel.value}"
    assert parse_topic(topic) == TopicRef("north-gate", "door-1", channel)


def test_command_channel_uses_short_level_name() -> None:
    assert terminal_topic("s", "t", Channel.COMMAND) == "gatehouse/s/terminals/t/cmd"
    assert parse_topic("gatehouse/s/terminals/t/cmd").channel is Channel.COMMAND


@pytest.mark.parametrize("ident", ["a", "0", "a1", "a-b", "a--b", "1-2-3", "a" * 64, "z" + "-" * 62 + "9"])
def test_valid_identifiers(ident: str) -> None:
    assert check_ident(ident, "site code") == ident
    assert parse_topic(terminal_topic(ident, ident, Channel.ACK)) == TopicRef(ident, ident, Channel.ACK)


@pytest.mark.parametrize("ident", BAD_IDENTS)
def test_bad_site_code_rejected(ident: str) -> None:
    with pytest.raises(TopicError, match="site code"):
        terminal_topic(ident, "door-1", Channel.STATUS)


@pytest.mark.parametrize("ident", BAD_IDENTS)
def test_bad_terminal_id_rejected(ident: str) -> None:
    with pytest.raises(TopicError, match="terminal id"):
        terminal_topic("north", ident, Channel.STATUS)


def test_identifier_with_trailing_newline_rejected() -> None:
    with pytest.raises(TopicError):
        check_ident("north\n", "site code")


def test_error_message_names_what_and_value() -> None:
    with pytest.raises(TopicError) as info:
        check_ident("Bad+", "terminal id")
    assert "terminal id 'Bad+'" in str(info.value)


def test_topic_error_is_a_value_error() -> None:
    assert issubclass(TopicError, ValueError)


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "gatehouse",
        "gatehouse/server/status",
        "/gatehouse/north/terminals/door-1/status",
        "gatehouse/north/terminals/door-1/status/",
        "gatehouse/north/terminals/door-1/status/extra",
        "gatehouse/north/terminals/door-1",
        "other/north/terminals/door-1/status",
        "Gatehouse/north/terminals/door-1/status",
        "gatehouse/north/doors/door-1/status",
        "gatehouse/north/terminals/door-1/STATUS",
        "gatehouse/north/terminals/door-1/command",
        "gatehouse/north/terminals/door-1/",
        "gatehouse/+/terminals/door-1/status",
        "gatehouse/north/terminals/+/status",
        "gatehouse/north/terminals/#",
        "gatehouse/North/terminals/door-1/status",
        "gatehouse//terminals/door-1/status",
        "gatehouse/north/terminals/door_1/birth",
    ],
)
def test_parse_topic_rejects_foreign_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_topic(topic)


def test_server_status_topic() -> None:
    assert server_status() == "gatehouse/server/status"
    with pytest.raises(TopicError, match="not a Gatehouse terminal topic"):
        parse_topic(server_status())


def test_server_status_is_not_matched_by_terminal_subscriptions() -> None:
    assert not topic_matches_sub(all_terminals(Channel.STATUS), server_status())


def test_all_terminals_filters() -> None:
    assert all_terminals(Channel.EVENTS) == "gatehouse/+/terminals/+/events"
    assert all_terminals(Channel.BIRTH, "north") == "gatehouse/north/terminals/+/birth"
    with pytest.raises(TopicError, match="site code"):
        all_terminals(Channel.BIRTH, "#")


@pytest.mark.parametrize("channel", list(Channel))
def test_filters_match_exactly_the_built_topics(channel: Channel) -> None:
    topic = terminal_topic("north", "door-1", channel)
    assert topic_matches_sub(all_terminals(channel), topic)
    assert topic_matches_sub(all_terminals(channel, "north"), topic)
    assert not topic_matches_sub(all_terminals(channel, "south"), topic)
    others = [c for c in Channel if c is not channel]
    assert not any(topic_matches_sub(all_terminals(other), topic) for other in others)
