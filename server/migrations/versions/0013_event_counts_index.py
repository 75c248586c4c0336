"""event counts index: the dashboard's per-day counts read from one covering index, not the events table

The (site_id, decision, occurred_at) index grows method, door_id and person_pseudonym, so counting a site's
day of entries by method, door and face enrolment (GROUP BY) never reads a table row. The wider index
serves everything the narrower one did (its columns lead), so it takes its place.

Revision ID: 0013eventcounts
Revises: 0012usualgroup
Create Date: 2026-12-07 18:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013eventcounts'
down_revision = '0012usualgroup'
branch_labels = None
depends_on = None

_COVERING = ['site_id', 'decision', 'occurred_at', 'method', 'door_id', 'person_pseudonym']


def upgrade():
    with op.batch_alter_table('access_events', schema=None) as batch_op:
        batch_op.create_index('ix_access_events_site_decision_time_cover', _COVERING, unique=False)
        batch_op.drop_index('ix_access_events_site_decision_time')


def downgrade():
    with op.batch_alter_table('access_events', schema=None) as batch_op:
        batch_op.create_index(
            'ix_access_events_site_decision_time', ['site_id', 'decision', 'occurred_at'], unique=False
        )
        batch_op.drop_index('ix_access_events_site_decision_time_cover')
