"""queue of sign-in code requests, delivered outside the request

Revision ID: 0010codequeue
Revises: 0009signin
Create Date: 2026-12-07 16:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010codequeue'
down_revision = '0009signin'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('login_code_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'sent', 'dropped', 'failed', 'expired', name='coderequeststate', native_enum=False, create_constraint=True, length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_code_requests'))
    )
    with op.batch_alter_table('login_code_requests', schema=None) as batch_op:
        batch_op.create_index('ix_login_code_requests_due', ['state', 'next_try_at'], unique=False)


def downgrade():
    with op.batch_alter_table('login_code_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_login_code_requests_due')

    op.drop_table('login_code_requests')
