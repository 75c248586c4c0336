"""All Gatehouse models; importing this module registers every table on the metadata."""

# audit_guard registers the triggers and ORM listeners that keep the audit log append-only; text_guard refuses NUL
# in any text column on flush.
from server.models import audit_guard, text_guard  # noqa: F401
from server.models.access import (
    AccessGroup,
    Holiday,
    PassStatus,
    VisitorPass,
    WeeklyWindow,
    access_group_doors,
    access_group_members,
)
from server.models.base import Base, UTCDateTime, db, utcnow
from server.models.console import CommandOp, CommandStatus, ImportJob, ImportStatus, LoginAttempt, TerminalCommand
from server.models.erasure import ConfirmedBy, ErasureConfirmation, ErasureReason, ErasureReceipt, TemplateHolding
from server.models.mobile import AppSession, LoginCode, ResidentAccount, SessionEnd
from server.models.people import (
    ConsentChannel,
    ConsentGiver,
    ConsentRecord,
    Credential,
    CredentialStatus,
    FaceTemplate,
    Person,
    PersonKind,
    PersonStatus,
    StaleReason,
)
from server.models.privacy import Alarm, AlarmKind, PrivacyAssessment, PrivacyNotice
from server.models.records import (
    AccessEvent,
    AuditEntry,
    ConsoleRole,
    Decision,
    EntryMethod,
    EventDayCount,
    JournalEntry,
    JournalKind,
)
from server.models.site import Door, Site, Terminal, TerminalStatus, terminal_doors
from server.models.users import ConsoleUser

__all__ = [
    "AccessEvent",
    "AccessGroup",
    "Alarm",
    "AlarmKind",
    "AppSession",
    "AuditEntry",
    "Base",
    "CommandOp",
    "CommandStatus",
    "ConfirmedBy",
    "ConsentChannel",
    "ConsentGiver",
    "ConsentRecord",
    "ConsoleRole",
    "ConsoleUser",
    "Credential",
    "CredentialStatus",
    "Decision",
    "Door",
    "EntryMethod",
    "ErasureConfirmation",
    "ErasureReason",
    "ErasureReceipt",
    "EventDayCount",
    "FaceTemplate",
    "Holiday",
    "ImportJob",
    "ImportStatus",
    "JournalEntry",
    "JournalKind",
    "LoginAttempt",
    "LoginCode",
    "PassStatus",
    "Person",
    "PersonKind",
    "PersonStatus",
    "PrivacyAssessment",
    "PrivacyNotice",
    "ResidentAccount",
    "SessionEnd",
    "Site",
    "StaleReason",
    "TemplateHolding",
    "Terminal",
    "TerminalCommand",
    "TerminalStatus",
    "UTCDateTime",
    "VisitorPass",
    "WeeklyWindow",
    "access_group_doors",
    "access_group_members",
    "db",
    "terminal_doors",
    "utcnow",
]
