"""people search: an index for the people list in name order, and on SQLite an FTS5 trigram index of names, units
and phone numbers kept by triggers (PostgreSQL's pg_trgm indexes already serve the search there)

At 100,000 people the list sorted every row by name for each page (20 ms), and on SQLite every search read the
whole table (50 to 60 ms); with these a page and a search take a few milliseconds. The FTS5 statements are the
model's own (server/models/people_search.py), so a migrated database and a new one hold the same index.

Revision ID: 0017peoplesearch
Revises: 0016offlinebound
Create Date: 2026-12-07 21:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

from server.models import people_search


# revision identifiers, used by Alembic.
revision = '0017peoplesearch'
down_revision = '0016offlinebound'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_people_name_order', 'people', ['full_name', 'id'], unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        for statement in people_search.STATEMENTS:
            op.execute(statement)
        op.execute(people_search.REBUILD)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        for statement in people_search.DROP:
            op.execute(statement)
    op.drop_index('ix_people_name_order', table_name='people')
