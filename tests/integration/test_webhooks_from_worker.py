"""The worker process delivers webhooks: started over a real mosquitto broker, it sends a signed delivery for an
event stored while it runs, without being asked (both databases)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from server.app import create_app
from server.extensions import db
from server.link.worker import Worker
from server.models import FeedKind
from server.services.integrations import webhooks
from server.services.operations import feed
from tests.conftest import TEST_ACTOR, server_config
from tests.server.link.test_webhook_sender import Receiver
from tests.server.link.test_webhook_sender import receiver as receiver  # the fixture, re-exported for pytest

pytestmark = pytest.mark.integration


def test_the_worker_delivers_a_signed_webhook_for_a_new_item(
    app, db_url, key_dir, keys, mosquitto, make_site, make_door, receiver: Receiver
) -> None:
    site = make_site()
    door = make_door(site)
    receiver.status = 200
    _hook, secret = webhooks.register(db.session, TEST_ACTOR, keys, "PMS", receiver.url, ("access.granted",), site.id)
    db.session.commit()
    config = server_config(db_url, key_dir, mqtt={"host": "127.0.0.1", "port": mosquitto.port})
    worker = Worker(create_app(config, keys=keys))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker.connected.wait(10), "worker did not connect to mosquitto"
        payload = {"id": 7, "door_id": door.id, "person": "p-0123456789abcdef"}
        feed.record(db.session, [feed.NewItem(FeedKind.EVENT, "access.granted", 7, site.id, payload)])
        db.session.commit()
        deadline = time.monotonic() + 15
        while not receiver.accepted and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop_event.set()
        thread.join(15)
    assert not thread.is_alive(), "the worker (and its webhook thread) did not stop"
    assert len(receiver.accepted) == 1
    headers, body = receiver.accepted[0]
    Verifier(secret).verify(body, headers)  # raises unless the Standard Webhooks signature is valid
    sent = json.loads(body)
    assert sent["type"] == "access.granted" and sent["data"] == payload
