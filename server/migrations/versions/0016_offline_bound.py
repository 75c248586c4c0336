"""offline bound: access events record whether their terminal decided them past its site's max_offline_hours

A plain added column with a server default (no batch rebuild: on SQLite that would drop and recreate
access_events, which other tables reference); events stored before it were all decided within the bound.

Revision ID: 0016offlinebound
Revises: 0015operations
Create Date: 2026-12-07 21:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016offlinebound'
down_revision = '0015operations'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'access_events', sa.Column('past_offline_bound', sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade():
    op.drop_column('access_events', 'past_offline_bound')
