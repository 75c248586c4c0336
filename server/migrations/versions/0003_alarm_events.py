"""Terminals report alarms (e.g. a keypad locked out after wrong codes) as access events

Revision ID: 0003alarm
Revises: 0002sync
Create Date: 2026-11-22 15:00:00

"""
from alembic import op


revision = '0003alarm'
down_revision = '0002sync'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('access_events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_access_events_decision'), type_='check')
        batch_op.create_check_constraint(op.f('ck_access_events_decision'), "decision IN ('grant', 'deny', 'alarm')")


def downgrade():
    op.execute("DELETE FROM access_events WHERE decision = 'alarm'")
    with op.batch_alter_table('access_events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_access_events_decision'), type_='check')
        batch_op.create_check_constraint(op.f('ck_access_events_decision'), "decision IN ('grant', 'deny')")
