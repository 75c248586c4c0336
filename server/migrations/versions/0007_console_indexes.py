"""console indexes: people search (trigram, PostgreSQL), events by door, terminal and decision

Revision ID: 0007indexes
Revises: 0006console
Create Date: 2026-11-22 19:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007indexes'
down_revision = '0006console'
branch_labels = None
depends_on = None

_TRIGRAM_COLUMNS = ('full_name', 'unit', 'phone')


def upgrade():
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        # Trusted extension (PostgreSQL 13+): the database owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    with op.batch_alter_table('people', schema=None) as batch_op:
        # On SQLite a partial index over no rows: the same schema on both backends, never used by SQLite.
        for column in _TRIGRAM_COLUMNS:
            batch_op.create_index(
                f'ix_people_{column}_trgm',
                [column],
                unique=False,
                postgresql_using='gin',
                postgresql_ops={column: 'gin_trgm_ops'},
                sqlite_where=sa.text('0'),
            )
    with op.batch_alter_table('access_events', schema=None) as batch_op:
        batch_op.create_index('ix_access_events_door_time', ['door_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_access_events_terminal_time', ['terminal_id', 'occurred_at'], unique=False)
        batch_op.create_index(
            'ix_access_events_site_decision_time', ['site_id', 'decision', 'occurred_at'], unique=False
        )


def downgrade():
    with op.batch_alter_table('access_events', schema=None) as batch_op:
        batch_op.drop_index('ix_access_events_site_decision_time')
        batch_op.drop_index('ix_access_events_terminal_time')
        batch_op.drop_index('ix_access_events_door_time')
    with op.batch_alter_table('people', schema=None) as batch_op:
        for column in reversed(_TRIGRAM_COLUMNS):
            batch_op.drop_index(f'ix_people_{column}_trgm')
    # pg_trgm stays: other objects of the database may use it.
