"""SQLite's index for the people search: an FTS5 trigram index over names, units and phone numbers.

The console finds people by part of a name, the start of a unit or part of a phone number. On PostgreSQL the
pg_trgm indexes on the people table serve that; SQLite has no such index, and at 100,000 people reading every row
cost 50 to 60 ms a search. An FTS5 table with the trigram tokenizer (SQLite 3.34 or newer) finds the rows that
contain any text of three characters or more in a millisecond or two; the search still applies its own LIKE
conditions to those rows, so what matches is exactly what matched before. Shorter searches (a two-character
Chinese name) read the table as before.

The index is external-content (it stores no copy of the text) and triggers keep it in step with the people table.
Both the model's create_all (an after_create hook on the people table) and the migration run these statements.
"""

from __future__ import annotations

from sqlalchemy import DDL, event

from server.models.people import Person

TABLE = "people_search"
# The shortest text the trigram index can find; shorter searches read the people table.
MIN_CHARS = 3

# Fixed text (no input reaches these statements).
STATEMENTS = (
    "CREATE VIRTUAL TABLE people_search USING fts5(full_name, unit, phone, content='people', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER people_search_insert AFTER INSERT ON people BEGIN "
    "INSERT INTO people_search(rowid, full_name, unit, phone) VALUES (new.id, new.full_name, new.unit, new.phone); END",
    "CREATE TRIGGER people_search_delete AFTER DELETE ON people BEGIN "
    "INSERT INTO people_search(people_search, rowid, full_name, unit, phone) "
    "VALUES ('delete', old.id, old.full_name, old.unit, old.phone); END",
    "CREATE TRIGGER people_search_update AFTER UPDATE OF full_name, unit, phone ON people BEGIN "
    "INSERT INTO people_search(people_search, rowid, full_name, unit, phone) "
    "VALUES ('delete', old.id, old.full_name, old.unit, old.phone); "
    "INSERT INTO people_search(rowid, full_name, unit, phone) VALUES (new.id, new.full_name, new.unit, new.phone); END",
)
# Fills the index from the people already stored (the migration).
REBUILD = "INSERT INTO people_search(people_search) VALUES ('rebuild')"
DROP = (
    "DROP TRIGGER IF EXISTS people_search_update",
    "DROP TRIGGER IF EXISTS people_search_delete",
    "DROP TRIGGER IF EXISTS people_search_insert",
    "DROP TABLE IF EXISTS people_search",
)


def phrase(text: str) -> str:
    """`text` as one FTS5 phrase: matched as a substring, every character literal."""
    return '"' + text.replace('"', '""') + '"'


def is_search_table(name: str) -> bool:
    """Whether a table belongs to this index (FTS5 keeps shadow tables beside it), which the models do not declare."""
    return name == TABLE or name.startswith(f"{TABLE}_")


for _statement in STATEMENTS:
    event.listen(Person.__table__, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
