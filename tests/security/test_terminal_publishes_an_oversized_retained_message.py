"""Red team, issue 18 item 10: a terminal's credentials publish a huge retained message on its own topic.

Without a packet size limit mosquitto keeps and persists it, and the worker reads it again on every
reconnect. With the broker files' limit, mosquitto drops the connection instead and keeps nothing, while
the largest message Gatehouse itself sends (a signed message of the wire contract's maximum size on the
longest topic) still passes, both from a terminal and from the worker.
"""

from __future__ import annotations

import pytest

from gatehouse_core.wire.base import MAX_MESSAGE_BYTES
from gatehouse_core.wire.signing import MAGIC
from gatehouse_core.wire.topics import Channel
from tests.integration.conftest import SecureBroker, secure_broker  # noqa: F401 (fixtures)
from tests.integration.test_broker_security import TIMEOUT, peers, provision  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

OVERSIZED = 3 * 1024 * 1024  # over the limit, yet small enough to keep the test quick (the report used 60 MB)
# What every receiver accepts at most: a wire message of the contract's maximum size, signed (magic + signature).
LARGEST = MAX_MESSAGE_BYTES + len(MAGIC) + 64


def _first_message_after_subscribing(secure_broker: SecureBroker, peers, topic: str) -> bytes:  # noqa: F811
    """What a worker subscribing to `topic` receives first: a retained message, if the broker kept one."""
    worker = peers(secure_broker.server_mqtt()).connected()
    assert not worker.subscribe(topic).is_failure
    # MQTT sends retained messages right after the SUBACK, before anything published later.
    worker.publish(topic, b"sentinel")
    received = worker.messages.get(timeout=TIMEOUT)
    assert received[0] == topic
    return received[1]


def test_broker_refuses_an_oversized_retained_publish(secure_broker, provision, peers):  # noqa: F811
    stolen = provision("North gate")
    secure_broker.refresh()
    attacker = peers(secure_broker.terminal_mqtt(stolen.ident, stolen.password_file)).connected()
    topic = stolen.topic(Channel.STATUS)  # retained by design, and the terminal may write it

    attacker.client.publish(topic, b"x" * OVERSIZED, qos=1, retain=True)

    assert attacker.dropped.wait(TIMEOUT), "mosquitto kept the connection of a client that sent an oversized packet"
    assert _first_message_after_subscribing(secure_broker, peers, topic) == b"sentinel", "the broker retained it"


def test_largest_legitimate_message_still_passes(secure_broker, provision, peers):  # noqa: F811
    honest = provision("South gate")
    secure_broker.refresh()
    terminal = peers(secure_broker.terminal_mqtt(honest.ident, honest.password_file)).connected()
    worker = peers(secure_broker.server_mqtt()).connected()
    biggest = b"e" * LARGEST

    # A terminal's biggest event batch reaches the worker ...
    events = honest.topic(Channel.EVENTS)
    assert not worker.subscribe(events).is_failure
    terminal.publish(events, biggest)
    assert worker.wait_for(events, biggest)[-1] == (events, biggest)
    # ... and the worker's biggest snapshot part reaches the terminal.
    sync = honest.topic(Channel.SYNC)
    assert not terminal.subscribe(sync).is_failure
    worker.publish(sync, biggest)
    assert terminal.wait_for(sync, biggest)[-1] == (sync, biggest)
    assert not terminal.dropped.is_set() and not worker.dropped.is_set()
