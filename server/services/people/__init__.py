"""People and their credentials: records, CSV import, cards, ID documents and app codes, and what residents read."""
