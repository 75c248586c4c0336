"""Alarm kind for terminals asking for more full snapshots than their budget allows

Revision ID: 0011snapshots
Revises: 0010codequeue
Create Date: 2026-12-07 17:00:00.000000

"""
from alembic import op

revision = '0011snapshots'
down_revision = '0010codequeue'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_alarms_alarmkind'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_alarms_alarmkind'), "kind IN ('erasure_overdue', 'face_count', 'snapshot_budget')"
        )


def downgrade():
    op.execute("DELETE FROM alarms WHERE kind = 'snapshot_budget'")
    with op.batch_alter_table('alarms', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_alarms_alarmkind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_alarms_alarmkind'), "kind IN ('erasure_overdue', 'face_count')")
