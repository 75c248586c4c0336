"""What the guard watches and other systems consume: alarms, each door's live state, the operations feed,
integration API keys and webhooks.

- `Alarm`: one model for every kind, raised once (unique per kind and ref), with severity, site, door and
  terminal; acknowledged by a guard with a comment, then resolved when its cause ends (or by a manager).
- `DoorLiveState`: each supervised door's state as its terminal last published it (retained on the broker).
- `FeedItem`: an append-only, ordered record of what happened (an access event stored, an alarm raised,
  acknowledged or resolved, a door's state changed), written in the transaction that made it happen. Its id is
  the Server-Sent Events id the operations screen catches up from, and what webhooks deliver.
- `ApiKey`, `Webhook`, `WebhookDelivery`: the integration API's keys (hashed, scoped, revocable) and the
  durable outbox of signed webhook deliveries.

Nothing biometric and no card or ID value is stored in any of them.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse_core.wire.messages import DoorState
from server.models.base import Base, UTCDateTime, str_enum, utcnow


class AlarmKind(enum.StrEnum):
    """What an alarm is about."""

    # A terminal has not confirmed deleting a face template within the site's erasure deadline.
    ERASURE_OVERDUE = "erasure_overdue"
    # The count of enrolled faces is nearing the filing threshold.
    FACE_COUNT = "face_count"
    # A terminal asked for more full snapshots than its budget allows (a stolen terminal flooding births?).
    SNAPSHOT_BUDGET = "snapshot_budget"
    # A door opened without a grant or exit request.
    DOOR_FORCED = "door_forced"
    # A door still open past its held-open limit.
    DOOR_HELD_OPEN = "door_held_open"
    # A keypad locked after repeated wrong codes.
    KEYPAD_LOCKOUT = "keypad_lockout"
    # A terminal silent for longer than its site's offline_alarm_minutes.
    TERMINAL_OFFLINE = "terminal_offline"
    # A terminal or reader reported tampering.
    TERMINAL_TAMPER = "terminal_tamper"
    # A terminal's clock is too far from the server's.
    CLOCK_SKEW = "clock_skew"
    # A terminal's roster differs from the server's after sync.
    SYNC_DIVERGENCE = "sync_divergence"
    # Any other alarm a terminal raised (its reason code is in the message).
    TERMINAL_ALARM = "terminal_alarm"


class AlarmSeverity(enum.StrEnum):
    """How urgently a guard must act."""

    CRITICAL = "critical"  # now: a forced door, tampering
    WARNING = "warning"  # soon: a held door, a keypad lockout, a terminal cut off
    NOTICE = "notice"  # today: an overdue erasure, the face count


class Alarm(Base):
    """Something a guard or manager must act on: raised once, acknowledged with a comment, then resolved."""

    __tablename__ = "alarms"
    __table_args__ = (UniqueConstraint("kind", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[AlarmKind] = mapped_column(str_enum(AlarmKind, length=24))
    severity: Mapped[AlarmSeverity] = mapped_column(str_enum(AlarmSeverity, length=8), default=AlarmSeverity.NOTICE)
    # What the alarm is about, unique per kind (an erasure receipt id, a terminal event's uid, ...).
    ref: Mapped[str] = mapped_column(String(64))
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id", ondelete="SET NULL"), index=True)
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id", ondelete="SET NULL"), index=True)
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(120))
    ack_comment: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # "system" when the cause ended by itself, else the console user who resolved it.
    resolved_by: Mapped[str | None] = mapped_column(String(120))
    resolve_comment: Mapped[str | None] = mapped_column(Text)


class DoorLiveState(Base):
    """A door's supervised state as its terminal last published it."""

    __tablename__ = "door_live_states"

    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True)
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id", ondelete="SET NULL"))
    state: Mapped[DoorState] = mapped_column(str_enum(DoorState, length=12))
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    since: Mapped[datetime] = mapped_column(UTCDateTime)  # when the door entered the state (terminal's clock)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # when the server learnt it


class FeedKind(enum.StrEnum):
    """What a feed item records."""

    EVENT = "event"  # an access event stored (ref_id: access_events.id)
    ALARM = "alarm"  # an alarm raised, acknowledged or resolved (ref_id: alarms.id; the step in `topic`)
    DOOR = "door"  # a door's state changed (ref_id: doors.id)


class FeedItem(Base):
    """One thing that happened, in order; its id is the live screen's event id and the webhooks' cursor."""

    __tablename__ = "feed_items"
    __table_args__ = (Index("ix_feed_items_site_id_id", "site_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    kind: Mapped[FeedKind] = mapped_column(str_enum(FeedKind, length=8))
    # The webhook event type: access.granted, access.denied, alarm.raised, alarm.acknowledged, alarm.resolved,
    # door.state, ...
    topic: Mapped[str] = mapped_column(String(40))
    ref_id: Mapped[int] = mapped_column(Integer)
    # The item as the integration API and webhooks show it (JSON; no biometric data, no card or ID values).
    payload: Mapped[str] = mapped_column(Text)


class ApiKey(Base):
    """A key another system uses on the integration API: shown once, stored hashed, scoped, revocable."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # The key's public first characters, shown in the console and logs to tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the whole key (it is random, not a password)
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))  # None: every site
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(120))


class Webhook(Base):
    """A URL that receives the feed items of the topics it asked for, signed (Standard Webhooks)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    url: Mapped[str] = mapped_column(String(500))
    topics: Mapped[str] = mapped_column(String(400))  # space-separated feed topics
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))  # None: every site
    # The signing secret, sealed with the server's keys (it must be read back to sign).
    secret_sealed: Mapped[str] = mapped_column(Text)
    # The feed id deliveries were queued up to: items after it are queued next.
    cursor: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))


class DeliveryStatus(enum.StrEnum):
    """Where a webhook delivery stands."""

    PENDING = "pending"  # not yet delivered; retried at next_attempt_at
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # gave up after the last retry


class WebhookDelivery(Base):
    """One feed item for one webhook: the durable outbox the sender retries from, with backoff."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "feed_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    feed_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    # The Standard Webhooks message id (webhook-id header), the same on every retry.
    message_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, length=12), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OverrideMode(enum.StrEnum):
    """A mode that overrides a door's normal decisions until lifted."""

    LOCKDOWN = "lockdown"  # only designated staff credentials open; face, codes and passes refused
    EMERGENCY_RELEASE = "emergency_release"  # unlocked for everyone (a fire)


class DoorOverride(Base):
    """A lockdown or emergency release of one door (a door group's or site's is one row per door, one batch)."""

    __tablename__ = "door_overrides"
    __table_args__ = (Index("ix_door_overrides_live", "door_id", "lifted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[str] = mapped_column(String(32), index=True)  # rows started together share it
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"))
    mode: Mapped[OverrideMode] = mapped_column(str_enum(OverrideMode, length=20))
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[str] = mapped_column(String(120))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(120))
    lift_reason: Mapped[str | None] = mapped_column(Text)


class DoorUnlockSchedule(Base):
    """When a door stands unlocked for everyone (a park gate, a lobby in business hours)."""

    __tablename__ = "door_unlock_schedules"

    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True)
    # Weekly windows as JSON [[weekday 0-6, start minute, end minute], ...], in the site's time zone.
    windows: Mapped[str] = mapped_column(Text)
    # Stays locked in a window until someone with access enters (a staffed lobby opens when staff arrive).
    first_person_in: Mapped[bool] = mapped_column(Boolean, default=False)
    open_on_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120))
