"""The terminal's main loop: one thread owns all state; MQTT and driver callbacks only enqueue events.

The loop decides every presentation at the doors from the local store (card, ID document, app code,
visitor pass, face), pulses the relay and keeps the event, applies signed sync messages, acknowledges
what it applied (with each erasure), delivers events from its outbox until the server's receipt names
them, and asks again (birth) whenever it notices a gap. Doors keep deciding whatever the link does; only
face matching waits after start and each reconnect until the server confirms the roster (see FaceHold).
The broker connection is `server_link`, events on their way out are `outbox`, the configured devices come
from `hardware`.
"""

from __future__ import annotations

import enum
import json
import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gatehouse_core import __version__
from gatehouse_core.keyring import load_credential_key, load_public_key, load_seal_key
from gatehouse_core.wire.messages import Ack, Birth, Decision, EntryMethod, EventRecord, encode
from gatehouse_core.wire.topics import STATUS_ONLINE, Channel, server_status
from terminals import door_modes
from terminals.command_handling import RemoteCommands
from terminals.config import TerminalConfig
from terminals.control import ControlError, ControlServer, DoorAction, PhotoPresented, Request
from terminals.decision import DecisionEngine, Reason, Verdict
from terminals.door_inputs import DoorInputs, DoorSignal, Signal, SimulatedDoorInputs
from terminals.doors import DoorController
from terminals.face_service import FaceService
from terminals.hardware import make_door_inputs, make_drivers, make_relay
from terminals.inputs import Driver, FaceAttempt, Presentation
from terminals.lockout import Lockout, LockoutPolicy
from terminals.offline_bound import contact_refresh
from terminals.outbox import EventOutbox
from terminals.relay import Relay
from terminals.server_link import Connected, Disconnected, Incoming, ServerLink
from terminals.store import TerminalStore
from terminals.supervision import DoorSupervisor
from terminals.sync_apply import FaceHold, SyncApplier

log = logging.getLogger(__name__)


class LinkState(enum.Enum):
    """State of the terminal's link to the server; doors keep working in every state."""

    STARTING = "starting"
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


@dataclass(frozen=True)
class NewEvents:
    """Access decisions made at the door, for the outbox."""

    events: tuple[EventRecord, ...]


@dataclass(frozen=True)
class Presented:
    """A presentation at a door from a driver or the control interface (with a reply for the latter)."""

    presentation: Presentation
    reply: Future[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ControlOp:
    """A status request or a guard's action from the control interface."""

    op: str
    reply: Future[dict[str, Any]]


Event = Connected | Disconnected | Incoming | NewEvents | Presented | ControlOp | DoorSignal

RESYNC_MIN_INTERVAL = 2.0  # seconds between births asking for missing changes
SYNC_STALL_TIMEOUT = 30.0  # seconds a half-received delta or snapshot may wait for its next part
PHOTO_READ_LIMIT = 10_000_001  # a presented photo beyond the face service's limit is refused, not read whole
MODES_INTERVAL = 1.0  # seconds between checks of door modes and unlock schedules (windows are whole minutes)
FACE_SYNC_WAIT_S = 10.0  # hold of a terminal without face entry (it only tracks sync; nothing waits on it)


class TerminalRuntime:
    """A door terminal process: connects, announces itself, applies sync and decides entries offline."""

    def __init__(
        self,
        config: TerminalConfig,
        stop: threading.Event | None = None,
        *,
        relay: Relay | None = None,
        drivers: list[Driver] | None = None,
        door_inputs: DoorInputs | None = None,
    ) -> None:
        self.config = config
        self.stop_event = stop or threading.Event()
        self.state = LinkState.STARTING
        self._events: queue.Queue[Event] = queue.Queue()
        # Fail at start, not at the first sync message or presentation, if a key is unusable.
        self.server_key = load_public_key(config.server_public_key)
        self.seal_key = load_seal_key(config.seal_key_file)
        credential_key = load_credential_key(config.credential_key_file)
        self.store = TerminalStore(config.data_dir / "terminal.db")
        self.sync = SyncApplier(self.store, self.server_key, config.site, config.terminal_id)
        self.hold = FaceHold(config.face.sync_wait_s if config.face is not None else FACE_SYNC_WAIT_S)
        lockout = config.lockout
        self._lockout_policy = LockoutPolicy(
            threshold=lockout.threshold,
            window_s=lockout.window_s,
            base_s=lockout.first_lockout_s,
            cap_s=lockout.max_lockout_s,
            quiet_reset_s=lockout.quiet_reset_s,
        )
        self.engine = DecisionEngine(
            self.store,
            site=config.site,
            credential_key=credential_key,
            seal_key=self.seal_key,
            server_key=self.server_key,
            lockout=Lockout.loads(self.store.state("lockout"), self._lockout_policy),
        )
        self.relay = relay if relay is not None else make_relay(config)
        self.supervisor = DoorSupervisor(
            config.terminal_id,
            {d.door: d.held_open_seconds if d.contact_line is not None else None for d in config.doors},
            time.monotonic(),
        )
        self.doors = DoorController(self.relay, config.relay.pulse_ms / 1000, self._lock_changed)
        # Per door, the unlock window in which someone was first let in (first-person-in), kept across restarts.
        self._first_in: dict[str, str] = json.loads(self.store.state("first_in") or "{}")
        self._modes_at = -MODES_INTERVAL
        self.door_inputs = door_inputs if door_inputs is not None else make_door_inputs(config)
        self.faces: FaceService | None = None
        if config.face is not None:
            # Without a face camera the engine still serves photos presented through the control socket.
            self.faces = FaceService(config.face, config.face_doors(), config.data_dir / "terminal.db", self.seal_key)
        self.drivers = drivers if drivers is not None else make_drivers(config, self.faces)
        self.control: ControlServer | None = ControlServer(
            config.control_socket or config.data_dir / "control.sock", self._control_dispatch, self._default_door
        )
        self.outbox = EventOutbox(self.store, config.terminal_id)
        self._last_birth = 0.0
        self._past_bound = False
        self._resync_wanted = False
        self._verify_after_catch_up = False
        self.commands = RemoteCommands(
            self.store,
            self.server_key,
            config.site,
            config.terminal_id,
            doors=self.doors,
            served=lambda: self.engine.policy.doors,
            reply=self._reply,
            resync=self._want_resync,
        )
        self.link = ServerLink(config, self._events.put)

    def submit_events(self, events: tuple[EventRecord, ...]) -> None:
        """Queue access events for the outbox (safe from any thread)."""
        self._events.put(NewEvents(events))

    def submit(self, presentation: Presentation) -> None:
        """Queue a presentation at a door (drivers call this from their own threads)."""
        self._events.put(Presented(presentation))

    def present(self, presentation: Presentation) -> Future[dict[str, Any]]:
        """Queue a presentation and get what the door showed (tests, tools)."""
        reply: Future[dict[str, Any]] = Future()
        self._events.put(Presented(presentation, reply))
        return reply

    def _control_dispatch(self, request: Request, reply: Future[dict[str, Any]]) -> None:
        if isinstance(request, PhotoPresented):
            self._present_photo(request, reply)
        elif isinstance(request, DoorAction):
            self._drive_door(request, reply)
        elif isinstance(request, str):
            self._events.put(ControlOp(request, reply))
        else:
            self._events.put(Presented(request, reply))

    def _present_photo(self, request: PhotoPresented, reply: Future[dict[str, Any]]) -> None:
        # On the control socket's thread, as a camera's frames are on the camera's: the loop only gets the attempt.
        if self.faces is None:
            reply.set_result({"error": "this terminal has no face engine (no [face] section in its config)"})
            return
        try:
            with request.photo.open("rb") as file:
                photo = file.read(PHOTO_READ_LIMIT)
            attempt = self.faces.present_photo(request.door, photo)
        except (OSError, ValueError) as exc:  # PhotoError is a ValueError
            reply.set_result({"error": f"cannot use the photo {request.photo}: {exc}"})
            return
        if isinstance(attempt, str):
            reply.set_result({"error": attempt})
        else:
            self._events.put(Presented(attempt, reply))

    def _drive_door(self, request: DoorAction, reply: Future[dict[str, Any]]) -> None:
        # On the control socket's thread: the simulated inputs hand the loop a signal carrying the reply.
        if not isinstance(self.door_inputs, SimulatedDoorInputs):
            reply.set_result(
                {"error": "this terminal's door inputs are not simulated ([door_inputs] driver); use the real door"}
            )
            return
        try:
            self.door_inputs.drive(request.door, request.action, reply)
        except ValueError as exc:
            reply.set_result({"error": str(exc)})

    def _default_door(self) -> int | None:
        # Read from another thread: a dict copy of a few doors; a stale answer only names a door to decide on.
        doors = list(self.engine.policy.doors)
        return doors[0] if len(doors) == 1 else None

    def run(self) -> None:
        """Run until the stop event is set."""
        self.state = LinkState.CONNECTING
        self.link.start()
        log.info(
            "terminal %s started; connecting to %s:%d",
            self.config.terminal_id,
            self.config.mqtt.host,
            self.config.mqtt.port,
        )
        try:
            self.control.start()  # type: ignore[union-attr]
        except ControlError as exc:
            if self.config.control_socket is not None:
                raise
            log.warning("no local control interface: %s", exc)
            self.control = None
        if self.faces is not None:
            self.faces.start()
        for driver in self.drivers:
            try:
                driver.start(self.submit)
            except Exception:
                # A broken reader or camera must not stop the other ways in.
                log.exception("an input driver failed to start; the terminal carries on without it")
        if self.door_inputs is not None:
            try:
                self.door_inputs.start(self._events.put)
            except Exception:
                log.exception("the door inputs failed to start; doors open and lock but are not supervised")
                self.door_inputs = None
        try:
            while not self.stop_event.is_set():
                # While idle, build the next app-code table in small slices; otherwise wait for input.
                busy = self.engine.codes.pending(time.time())
                try:
                    event = self._events.get_nowait() if busy else self._events.get(timeout=0.05)
                except queue.Empty:
                    event = None
                if event is not None:
                    self._handle(event)
                elif busy:
                    self.engine.codes.work(time.time())
                self._tick()
        finally:
            self._shutdown()

    # ---- doors ---------------------------------------------------------------------------------------------

    def _decide(self, presented: Presented) -> None:
        now = datetime.now(UTC)
        presentation = presented.presentation
        captured = self.commands.take(presentation)
        if captured is not None:
            if presented.reply is not None:
                presented.reply.set_result(captured)
            return
        if isinstance(presentation, FaceAttempt) and self.faces is not None and self.hold.held:
            # Made just before the hold, perhaps against a template withdrawn while this terminal was away.
            pending = Verdict(EntryMethod.FACE, presentation.door, Reason.FACE_SYNC_PENDING)
            verdict: Verdict | None = self.engine.bounded(pending, presentation, now)
        else:
            verdict = self.engine.decide(presentation, now)
        if verdict is None:
            if presented.reply is not None:
                presented.reply.set_result({"ignored": True})
            return
        if verdict.past_bound != self._past_bound:
            self._past_bound = verdict.past_bound
            if verdict.past_bound:
                log.warning("no word from the server for the site's max_offline_hours: applying its offline policy")
            else:
                log.info("heard from the server again: the offline policy no longer applies")
        if verdict.granted:
            self.doors.open(verdict.door, time.monotonic())
            self._first_person_in(verdict.door, now)
        self.store.record_decision(
            verdict.event(now),
            pass_use=verdict.pass_id if verdict.granted else None,
            code_use=verdict.code_use if verdict.granted else None,
        )
        self.outbox.added()
        if verdict.guess:
            self._wrong_guess(verdict, now)
        log.info("door %d: %s by %s", verdict.door, "granted" if verdict.granted else "denied", verdict.method.value)
        if presented.reply is not None:
            presented.reply.set_result({"door": verdict.door, "granted": verdict.granted, "message": verdict.message})

    def _apply_modes(self, now: float) -> None:
        """Hold each door's lock as its mode and unlock schedule ask (emergency release, scheduled unlock)."""
        self._modes_at = now
        policy = self.engine.policy
        at = datetime.now(UTC)
        for door_id, door in policy.doors.items():
            hold = door_modes.desired(door, at, policy.tz, policy.holidays, self._first_in.get(str(door_id)))
            if hold.unlocked != self.doors.held(door_id):
                log.warning("door %d %s (%s)", door_id, "held unlocked" if hold.unlocked else "released", hold.mode)
            try:
                self.doors.hold(door_id, hold.unlocked, now)
            except ValueError as exc:  # a door the server assigned but no relay line drives: others carry on
                log.error("door %d cannot be %s: %s", door_id, "held unlocked" if hold.unlocked else "released", exc)
            self.supervisor.set_mode(door_id, hold.mode, hold.unlocked, now)

    def _first_person_in(self, door_id: int, now: datetime) -> None:
        door = self.engine.policy.doors.get(door_id)
        if door is None or not door.first_person_in:
            return
        window = door_modes.current_window(door, now, self.engine.policy.tz, self.engine.policy.holidays)
        if window is not None and self._first_in.get(str(door_id)) != window:
            self._first_in[str(door_id)] = window
            self.store.set_state("first_in", json.dumps(self._first_in))
            self._apply_modes(time.monotonic())

    def _lock_changed(self, door: int, unlocked: bool, now: float) -> None:
        self._keep_alarms(self.supervisor.lock_changed(door, unlocked, now))

    def _on_door_signal(self, event: DoorSignal) -> None:
        now = time.monotonic()
        if event.signal is Signal.EXIT:
            # Unlocks like a grant (so the opening that follows is authorised) but is no access decision.
            log.info("door %d: exit request", event.door)
            self.doors.open(event.door, now)
        else:
            self._keep_alarms(self.supervisor.signal(event.door, event.signal, now, initial=event.initial))
        if event.reply is not None:
            event.reply.set_result({"door": event.door, "state": self.supervisor.state(event.door)})

    def _keep_alarms(self, alarms: list[EventRecord]) -> None:
        for alarm in alarms:
            self.store.record_decision(alarm)
        if alarms:
            self.outbox.added()

    def _publish_doors(self) -> None:
        self.link.publish_retained(Channel.DOORS, encode(self.supervisor.message()))

    def _wrong_guess(self, verdict: Verdict, now: datetime) -> None:
        lockout = self.engine.lockout.failure(now.timestamp())
        if lockout is not None:
            log.warning("typed entry locked for %.0f s after repeated wrong codes (signed QRs still work)", lockout)
            alarm = EventRecord(
                uid=str(uuid.uuid4()),
                door=verdict.door,
                method=verdict.method,
                decision=Decision.ALARM,
                reason=Reason.BRUTE_FORCE.value,
                at=now,
            )
            self.store.record_decision(alarm)
        self.store.set_state("lockout", self.engine.lockout.dumps())

    def _control(self, op: ControlOp) -> None:
        if op.op == "clear_lockout":
            self.engine.lockout.clear()
            self.store.set_state("lockout", self.engine.lockout.dumps())
            log.warning("keypad lockout cleared at the terminal")
            op.reply.set_result({"cleared": True})
            return
        now = time.time()
        op.reply.set_result(
            {
                "terminal": self.config.terminal_id,
                "link": self.state.value,
                "applied_seq": self.store.applied_seq(),
                "doors": sorted(self.engine.policy.doors),
                "door_states": self.supervisor.states(),
                "door_modes": {str(d): self.supervisor.mode(d) for d in sorted(self.engine.policy.doors)},
                "locked_out_for_s": round(self.engine.lockout.remaining(now), 1),
                "unsent_events": self.store.event_count(),
                "face": self._face_status(),
                "offline_bound": self._bound_status(),
            }
        )

    def _bound_status(self) -> dict[str, Any]:
        state = self.engine.offline_state(datetime.now(UTC))
        contact = self.store.last_contact()
        return {
            "past": state.past,
            "policy": state.policy.value,
            "last_contact": None if contact is None else contact.isoformat(),
        }

    def _face_status(self) -> dict[str, Any]:
        if self.faces is None:
            return {"state": "off"}
        report = self.faces.status()
        report["held"] = self.hold.held or self.faces.held
        if self.hold.held:
            report["held_for_s"] = round(self.hold.held_for(), 1)
        return report

    def _handle(self, event: Event) -> None:
        if isinstance(event, Connected):
            # Before anything else: the roster may lack deletions made while this terminal was away.
            self.hold.connected()
            if self.faces is not None:
                self.faces.hold()
            self.link.online()
            self.state = LinkState.ONLINE
            self._publish_doors()
            self.outbox.resend_all()
            self._announce()
            if self.store.pending_erasures():
                self._ack()
            log.info("terminal %s online", self.config.terminal_id)
        elif isinstance(event, Disconnected):
            if self.state is LinkState.ONLINE:
                log.warning("terminal %s lost the broker (%s); deciding offline", self.config.terminal_id, event.reason)
            self.state = LinkState.OFFLINE
        elif isinstance(event, Presented):
            self._decide(event)
        elif isinstance(event, ControlOp):
            self._control(event)
        elif isinstance(event, DoorSignal):
            self._on_door_signal(event)
        elif isinstance(event, NewEvents):
            self.store.add_events(event.events)
            self.outbox.added()
        elif event.topic == self.link.topic[Channel.SYNC]:
            self._on_sync(event.payload)
        elif event.topic == self.link.topic[Channel.RECEIPT]:
            receipt = self.sync.handle_receipt(event.topic, event.payload)
            if receipt is not None:
                # Only a receipt for events still held is fresh: an old one replayed proves nothing.
                if self.store.holds_events((*receipt.events, *receipt.rejected)):
                    self.store.heard_from_server()
                self.outbox.settle(receipt)
        elif event.topic == server_status():
            # The retained copy arrives right after our own connect-time announcement; only a live
            # "online" means a (re)started worker that has not heard us yet.
            if event.payload == STATUS_ONLINE and self.state is LinkState.ONLINE and not event.retained:
                # A restarted worker: announce again and send anything unreceipted again.
                self.outbox.resend_all()
                self._announce()
        elif event.topic == self.link.topic[Channel.COMMAND]:
            if self.commands.handle(event.topic, event.payload):
                self.outbox.added()
        else:
            log.debug("ignoring message on %s (%d bytes)", event.topic, len(event.payload))

    def _on_sync(self, payload: bytes) -> None:
        outcome = self.sync.handle_sync(self.link.topic[Channel.SYNC], payload)
        # Fresh word from the server (the offline bound's clock): a change applied, or the answer to this connection.
        if outcome.applied or (outcome.in_sync is not None and outcome.in_sync.nonce == self.hold.nonce):
            self.store.heard_from_server()
        if outcome.applied:
            self.engine.synced(outcome.people, outcome.full)
            self._apply_modes(time.monotonic())
            if self.faces is not None:
                self.faces.synced(outcome.people, outcome.full)
        if outcome.ack:
            self._ack()
        if outcome.resync:
            self._resync_wanted = True
        applied, busy = self.store.applied_seq(), self.sync.busy()
        if outcome.in_sync is not None and self.hold.confirm(outcome.in_sync, applied, busy):
            # The topic is in order, so whatever is half-way lost its remaining parts: start over.
            self.sync.abandon("the server's answer ended before all of it arrived")
            self._resync_wanted = True
        if self.hold.settle(applied, busy) and self.faces is not None:
            self.faces.release()
        if outcome.applied and not self.sync.busy() and self._verify_after_catch_up:
            # A catch-up is complete: announce once more so the server can compare roster hashes.
            self._verify_after_catch_up = False
            self._announce(verify=True)

    def _ack(self) -> None:
        if self.state is not LinkState.ONLINE:
            return
        ack = Ack(
            terminal=self.config.terminal_id,
            applied_seq=self.store.applied_seq(),
            erased=tuple(self.store.pending_erasures()[:1000]),
        )
        self.link.publish(Channel.ACK, encode(ack))

    def _reply(self, body: bytes) -> None:
        # Not retained; while offline paho keeps it (QoS 1) for the reconnect, and a late answer is ignored.
        self.link.publish(Channel.REPLY, body)

    def _want_resync(self) -> None:
        self._resync_wanted = True

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._modes_at >= MODES_INTERVAL:
            self._apply_modes(now)
        self.doors.tick(now)
        self._keep_alarms(self.supervisor.tick(now))
        self.commands.tick()
        if self.sync.busy() and now - self.sync.last_progress > SYNC_STALL_TIMEOUT:
            self.sync.abandon("no next part within the timeout")
            self._resync_wanted = True
        if (
            self.faces is not None
            and self.hold.held
            and self.hold.expire(self.sync.last_progress, self.store.applied_seq())
        ):
            self.faces.release()
        if self.state is not LinkState.ONLINE:
            return
        if self._resync_wanted and now - self._last_birth >= RESYNC_MIN_INTERVAL:
            self._resync_wanted = False
            self._announce()
        elif self._contact_due(now):
            # Connected but nothing heard for a while: a birth gets the server's InSync, a sign of life.
            self._announce()
        if self.supervisor.changed:
            self._publish_doors()
        self.outbox.deliver(now, lambda body: self.link.publish(Channel.EVENTS, body))

    def _contact_due(self, now: float) -> bool:
        refresh = contact_refresh(self.engine.policy.site)
        contact = self.store.last_contact()
        silent = contact is None or datetime.now(UTC) - contact >= refresh
        return silent and now - self._last_birth >= refresh.total_seconds()

    def _announce(self, verify: bool = False) -> None:
        self._last_birth = time.monotonic()
        # The answer to a plain announcement may be a catch-up; once applied, announce again to verify it.
        self._verify_after_catch_up = not verify
        self.link.publish(Channel.BIRTH, encode(self._birth()))

    def _birth(self) -> Birth:
        return Birth(
            terminal=self.config.terminal_id,
            applied_seq=self.store.applied_seq(),
            roster_hash=self.store.roster_hash(),
            software=f"gatehouse-terminal/{__version__}",
            nonce=self.hold.nonce,
        )

    def _shutdown(self) -> None:
        for driver in self.drivers:
            try:
                driver.stop()
            except Exception:
                log.exception("an input driver failed to stop cleanly")
        if self.door_inputs is not None:
            try:
                self.door_inputs.stop()
            except Exception:
                log.exception("the door inputs failed to stop cleanly")
        if self.control is not None:
            self.control.stop()
        if self.faces is not None:
            self.faces.stop()
        self.doors.close_all()
        self.relay.close()
        self.link.close(say_offline=self.state is LinkState.ONLINE)
        self.store.close()
        self.state = LinkState.STOPPED
        log.info("terminal %s stopped", self.config.terminal_id)
