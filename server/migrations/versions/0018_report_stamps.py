"""report stamps: a version number per kind of stored figure, so a cache of past days' door activity in any
server process knows when a late event has changed them

Revision ID: 0018reportstamps
Revises: 0017peoplesearch
Create Date: 2026-12-07 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018reportstamps'
down_revision = '0017peoplesearch'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_stamps',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_report_stamps'))
    )


def downgrade():
    op.drop_table('report_stamps')
