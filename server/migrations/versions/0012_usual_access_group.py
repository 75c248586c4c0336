"""A site's usual access group (the one new people usually join), marked on the group

Revision ID: 0012usualgroup
Revises: 0011snapshots
Create Date: 2026-12-07 18:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = '0012usualgroup'
down_revision = '0011snapshots'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('access_groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('usual', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(
            'uq_access_groups_usual_site',
            ['site_id'],
            unique=True,
            sqlite_where=sa.text('usual'),
            postgresql_where=sa.text('usual'),
        )


def downgrade():
    with op.batch_alter_table('access_groups', schema=None) as batch_op:
        batch_op.drop_index('uq_access_groups_usual_site')
        batch_op.drop_column('usual')
