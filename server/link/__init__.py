"""The terminal link: everything between the database and the door terminals.

The worker process, the journal publisher (signed deltas and snapshots), change encoding, the roster
each terminal should hold, event ingest and command sending. It calls services; services never import it.
"""
