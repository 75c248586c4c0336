"""Build paho MQTT clients the same way for the worker and for terminals."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gatehouse_core.configtypes import MqttConfig


@dataclass(frozen=True)
class Will:
    """Last-will message the broker publishes if the client vanishes."""

    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


def make_client(
    client_id: str, config: MqttConfig, *, username: str | None = None, will: Will | None = None
) -> mqtt.Client:
    """A configured, not yet connected MQTT 3.1.1 client with persistent session and backoff reconnects."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    user = config.username or username
    if user is not None:
        client.username_pw_set(user, config.read_password())
    if config.tls:
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        client.tls_set_context(context)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    # Queue messages while offline instead of dropping them; paho keeps them in memory.
    client.max_queued_messages_set(0)
    return client
