"""An embedded MQTT broker (amqtt) for the zero-setup demo; production and tests use mosquitto."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """amqtt running on its own event loop in a background thread, bound to loopback only."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1884) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="embedded-broker", daemon=True)
        self._broker: Any = None

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts TCP connections."""
        from amqtt.broker import Broker

        logging.getLogger("amqtt").setLevel(logging.WARNING)
        logging.getLogger("transitions").setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Loopback only, for the demo; production brokers use per-terminal passwords and ACLs.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._thread.start()

        async def _start() -> None:
            self._broker = Broker(config, loop=self._loop)
            await self._broker.start()

        # Broker.start() returns once its listeners are bound.
        asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the broker down and end its thread."""
        if self._broker is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout)
            except Exception:  # a broker that fails to stop cleanly must not block the demo's exit
                log.warning("embedded broker did not shut down cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
