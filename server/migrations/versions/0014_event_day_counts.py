"""event day counts: a daily rollup of access events for the dashboard, filled from the events stored so far

One row per site, site-local calendar day, decision, method, door, reason and face enrolment, with how many
events it stands for; the server adds to it in the transaction that stores each event. Counts only, nothing
personal. The backfill is the service's own recount (services.reports.day_counts.recount), so a database
migrated here holds exactly what counting every event as it arrived would have.

Revision ID: 0014eventdaycounts
Revises: 0013eventcounts
Create Date: 2026-12-07 19:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014eventdaycounts'
down_revision = '0013eventcounts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('event_day_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('door_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.Enum('face', 'card', 'id_document', 'app_code', 'visitor_code', 'visitor_qr', 'remote', name='entrymethod', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('decision', sa.Enum('grant', 'deny', 'alarm', name='decision', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('enrolled', sa.Boolean(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_event_day_counts_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_day_counts')),
    sa.UniqueConstraint('site_id', 'decision', 'day', 'method', 'door_id', 'reason', 'enrolled', name='uq_event_day_counts_key')
    )
    # Imported here, not at the top: the app's models are needed only to count, and only on upgrade.
    from server.services.reports import day_counts

    day_counts.recount(op.get_bind())


def downgrade():
    op.drop_table('event_day_counts')
