"""The audit log is append-only: triggers refuse DELETE and any UPDATE but nulling actor_id/site_id

Revision ID: 0005audit
Revises: 0004privacy
Create Date: 2026-11-23 10:00:00

The same SQL is attached to the model table in server/models/audit_guard.py (for create_all). Kept as
literal SQL here so this migration means the same thing whatever the models later say.

On SQLite a batch_alter_table on audit_entries rebuilds the table and loses these triggers: a later
migration that does so must create them again.
"""
from alembic import op


revision = '0005audit'
down_revision = '0004privacy'
branch_labels = None
depends_on = None


_SQLITE = (
    """CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
    """CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
WHEN NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.actor_label IS NOT OLD.actor_label
  OR NEW.action IS NOT OLD.action OR NEW.target_type IS NOT OLD.target_type OR NEW.target_id IS NOT OLD.target_id
  OR NEW.details IS NOT OLD.details
  OR (NEW.actor_id IS NOT OLD.actor_id AND NEW.actor_id IS NOT NULL)
  OR (NEW.site_id IS NOT OLD.site_id AND NEW.site_id IS NOT NULL)
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
)

_POSTGRESQL = (
    """CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
        OR (to_jsonb(NEW) - 'actor_id' - 'site_id') IS DISTINCT FROM (to_jsonb(OLD) - 'actor_id' - 'site_id')
        OR (NEW.actor_id IS DISTINCT FROM OLD.actor_id AND NEW.actor_id IS NOT NULL)
        OR (NEW.site_id IS DISTINCT FROM OLD.site_id AND NEW.site_id IS NOT NULL)
    THEN
        RAISE EXCEPTION 'audit entries are append-only' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$""",
    """CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()""",
    """CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()""",
)


def upgrade():
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRESQL if dialect == 'postgresql' else _SQLITE:
        op.execute(statement)


def downgrade():
    op.execute('DROP TRIGGER IF EXISTS audit_entries_no_update' + (' ON audit_entries' if _pg() else ''))
    op.execute('DROP TRIGGER IF EXISTS audit_entries_no_delete' + (' ON audit_entries' if _pg() else ''))
    if _pg():
        op.execute('DROP FUNCTION IF EXISTS audit_entries_append_only()')


def _pg():
    return op.get_bind().dialect.name == 'postgresql'
