"""sign-in attempts per surface (console, phone app); console sessions that logging out ends

Revision ID: 0009signin
Revises: 0008mobile
Create Date: 2026-12-07 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009signin'
down_revision = '0008mobile'
branch_labels = None
depends_on = None


def upgrade():
    # Failed attempts live 15 minutes: the app's keys changed ("account:<id>"), so start the counters afresh.
    op.execute("DELETE FROM login_attempts")
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_username')
        batch_op.drop_index('ix_login_attempts_address')
        batch_op.add_column(sa.Column('surface', sa.String(length=8), nullable=False))
        batch_op.create_index('ix_login_attempts_surface_username', ['surface', 'username', 'at'], unique=False)
        batch_op.create_index('ix_login_attempts_surface_address', ['surface', 'address', 'at'], unique=False)

    op.create_table('console_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['console_users.id'], name=op.f('fk_console_sessions_user_id_console_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_console_sessions_token_hash'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_user_id'))

    op.drop_table('console_sessions')

    op.execute("DELETE FROM login_attempts")
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_surface_address')
        batch_op.drop_index('ix_login_attempts_surface_username')
        batch_op.drop_column('surface')
        batch_op.create_index('ix_login_attempts_address', ['address', 'at'], unique=False)
        batch_op.create_index('ix_login_attempts_username', ['username', 'at'], unique=False)
