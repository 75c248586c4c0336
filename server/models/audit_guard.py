"""The audit log is append-only: database triggers refuse changes, and the ORM refuses them before they are sent.

Only one change is allowed: the database itself setting `actor_id` or `site_id` to NULL when the console user
or site is deleted (ON DELETE SET NULL); `actor_label` keeps who it was.

The same trigger SQL is in migration 0005; `Base.metadata.create_all` (tests, demo) attaches it from here.
TRUNCATE is not guarded: the test suite empties PostgreSQL tables with it between tests, and only the database
owner may truncate anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DDL, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session

from server.models.records import AuditEntry

MESSAGE = "audit entries are append-only"

# SQLite: WHEN lists every column, so a column added later must be added here (and in a migration).
SQLITE_DDL = (
    f"""CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
WHEN NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.actor_label IS NOT OLD.actor_label
  OR NEW.action IS NOT OLD.action OR NEW.target_type IS NOT OLD.target_type OR NEW.target_id IS NOT OLD.target_id
  OR NEW.details IS NOT OLD.details
  OR (NEW.actor_id IS NOT OLD.actor_id AND NEW.actor_id IS NOT NULL)
  OR (NEW.site_id IS NOT OLD.site_id AND NEW.site_id IS NOT NULL)
BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
)

# PostgreSQL: the row as JSON minus the two nullable keys covers every column, present and future.
# SQLSTATE 23000 (integrity constraint violation) makes both backends raise IntegrityError.
POSTGRESQL_DDL = (
    f"""CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
        OR (to_jsonb(NEW) - 'actor_id' - 'site_id') IS DISTINCT FROM (to_jsonb(OLD) - 'actor_id' - 'site_id')
        OR (NEW.actor_id IS DISTINCT FROM OLD.actor_id AND NEW.actor_id IS NOT NULL)
        OR (NEW.site_id IS DISTINCT FROM OLD.site_id AND NEW.site_id IS NOT NULL)
    THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$""",
    """CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()""",
    """CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()""",
)

_NULLABLE = frozenset({"actor_id", "site_id"})


class AuditLogAppendOnly(Exception):
    """Code tried to change or delete an audit entry."""


for _statement in SQLITE_DDL:
    event.listen(AuditEntry.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
for _statement in POSTGRESQL_DDL:
    event.listen(AuditEntry.__table__, "after_create", DDL(_statement).execute_if(dialect="postgresql"))
event.listen(
    AuditEntry.__table__,
    "after_drop",
    DDL("DROP FUNCTION IF EXISTS audit_entries_append_only()").execute_if(dialect="postgresql"),
)


def _changed_columns(entry: AuditEntry) -> list[str]:
    """Columns of a loaded entry whose pending change is anything but setting actor_id or site_id to NULL."""
    changed = []
    for attr in inspect(entry).attrs:
        history = attr.history
        if not history.has_changes():
            continue
        if attr.key in _NULLABLE and list(history.added) == [None]:
            continue
        changed.append(attr.key)
    return changed


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, flush_context: Any, instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, AuditEntry):
            raise AuditLogAppendOnly(f"{MESSAGE}: refused to delete audit entry {obj.id}")
    for obj in session.dirty:
        if isinstance(obj, AuditEntry) and (changed := _changed_columns(obj)):
            raise AuditLogAppendOnly(f"{MESSAGE}: refused to change {', '.join(changed)} of audit entry {obj.id}")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_audit_changes(state: ORMExecuteState) -> None:
    # session.execute(update(AuditEntry) / delete(AuditEntry)) never reaches before_flush.
    if (state.is_update or state.is_delete) and any(m.class_ is AuditEntry for m in state.all_mappers):
        raise AuditLogAppendOnly(f"{MESSAGE}: refused a bulk {'UPDATE' if state.is_update else 'DELETE'}")
